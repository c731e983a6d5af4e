// Test doubles for the batcher: a task that records how it completed, and an
// executor that records the batches it saw. Test-only.
#ifndef FUSION_SERVER_BATCHING_TEST_TASK_H_
#define FUSION_SERVER_BATCHING_TEST_TASK_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace fusion::batching::testing {

// How each task id completed; thread-safe.
class CompletionLog {
 public:
  explicit CompletionLog(int ids) : counts_(ids), codes_(ids) {
    for (auto& c : counts_) c.store(0);
    for (auto& c : codes_) c.store(-1);
  }
  void Record(int id, absl::StatusCode code) {
    counts_.at(id).fetch_add(1);
    codes_.at(id).store(static_cast<int>(code));
  }
  void RecordUnanswered() { unanswered_.fetch_add(1); }

  int times(int id) const { return counts_.at(id).load(); }
  absl::StatusCode code(int id) const {
    return static_cast<absl::StatusCode>(codes_.at(id).load());
  }
  int unanswered() const { return unanswered_.load(); }
  int size() const { return static_cast<int>(counts_.size()); }

 private:
  std::vector<std::atomic<int>> counts_;
  std::vector<std::atomic<int>> codes_;  // last code; -1 until completed
  std::atomic<int> unanswered_{0};
};

// Satisfies the batcher's task contract. Records every completion (so a
// second one shows as times(id) == 2) and a destruction without any.
class TestTask {
 public:
  TestTask(int id, int length, int priority, CompletionLog* log,
           absl::Time deadline = absl::InfiniteFuture(),
           std::shared_ptr<std::atomic<bool>> cancel = nullptr)
      : id_(id),
        length_(length),
        priority_(priority),
        deadline_(deadline),
        cancel_(std::move(cancel)),
        log_(log) {}
  ~TestTask() {
    if (!completed_) log_->RecordUnanswered();
  }

  int id() const { return id_; }
  int priority() const { return priority_; }
  int length() const { return length_; }
  absl::Time deadline() const { return deadline_; }
  bool cancelled() const { return cancel_ != nullptr && cancel_->load(); }

  void Fail(absl::Status status) { Complete(status.code()); }
  void Succeed() { Complete(absl::StatusCode::kOk); }

 private:
  void Complete(absl::StatusCode code) {
    completed_ = true;
    log_->Record(id_, code);
  }

  const int id_, length_, priority_;
  const absl::Time deadline_;
  const std::shared_ptr<std::atomic<bool>> cancel_;
  CompletionLog* const log_;
  bool completed_ = false;
};

// What one batch held.
struct SeenBatch {
  std::vector<int> ids;
  std::vector<int> lengths;
};

// An executor callback that records each batch and completes its tasks OK;
// thread-safe. Throws (without completing) while throw_next() > 0.
class RecordingExecutor {
 public:
  template <typename Batch>
  void operator()(Batch&& batch) {
    SeenBatch seen;
    for (const auto& task : batch) {
      seen.ids.push_back(task->id());
      seen.lengths.push_back(task->length());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      batches_.push_back(seen);
    }
    if (throw_next_.load() > 0) {
      throw_next_.fetch_sub(1);
      throw std::runtime_error("injected executor failure");
    }
    for (auto& task : batch) task->Succeed();
  }

  void ThrowNext(int batches) { throw_next_.store(batches); }
  std::vector<SeenBatch> batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  std::vector<size_t> sizes() const {
    std::vector<size_t> sizes;
    for (const auto& b : batches()) sizes.push_back(b.ids.size());
    return sizes;
  }

 private:
  mutable std::mutex mu_;
  std::vector<SeenBatch> batches_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> throw_next_{0};
};

}  // namespace fusion::batching::testing

#endif  // FUSION_SERVER_BATCHING_TEST_TASK_H_
