// A bounded queue of tasks in front of a pool of executor threads that take
// the tasks out in batches.
//
// Generic over its task (TensorFlow Serving's BatchScheduler<TaskType>):
// it includes neither gRPC nor Torch. TaskT needs only to be movable through
// a unique_ptr; the executor callback receives ownership of each batch and is
// responsible for completing its tasks.
//
// Policy: an idle executor dispatches a batch as soon as max_batch_size
// tasks are queued, or when the oldest queued task has waited
// max_queue_delay, taking every queued task up to max_batch_size. With a
// zero delay an idle executor takes whatever is queued at once, so batches
// still grow with load.
//
// Thread-safety: every method may be called from any thread.
#ifndef FUSION_SERVER_BATCHING_BATCH_QUEUE_H_
#define FUSION_SERVER_BATCHING_BATCH_QUEUE_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fusion::batching {

struct BatchQueueOptions {
  int max_batch_size = 64;
  absl::Duration max_queue_delay = absl::Milliseconds(2);
  int max_queue_size = 1024;  // tasks waiting, not counting running batches
  int num_executors = 1;      // threads calling the executor callback
};

template <typename TaskT>
class BatchQueue {
 public:
  using Batch = std::vector<std::unique_ptr<TaskT>>;
  // Runs on an executor thread; owns the batch and completes every task.
  using ExecuteFn = std::function<void(Batch)>;

  // INVALID_ARGUMENT for non-positive sizes or a missing callback.
  static absl::StatusOr<std::unique_ptr<BatchQueue>> Create(
      const BatchQueueOptions& options, ExecuteFn execute) {
    if (options.max_batch_size < 1 || options.max_queue_size < 1 ||
        options.num_executors < 1 ||
        options.max_queue_delay < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "batch queue: max_batch_size, max_queue_size and num_executors "
          "must be >= 1, max_queue_delay >= 0");
    }
    if (!execute) return absl::InvalidArgumentError("batch queue: no executor");
    return std::unique_ptr<BatchQueue>(
        new BatchQueue(options, std::move(execute)));
  }

  // Drains: every queued task is still executed before the threads exit.
  ~BatchQueue() { Shutdown(); }

  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  // Takes `task` iff the result is OK. Never blocks on a full queue:
  // RESOURCE_EXHAUSTED when full, UNAVAILABLE once shutdown began.
  absl::Status Enqueue(std::unique_ptr<TaskT>& task) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("server is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.max_queue_size) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "queue full (", options_.max_queue_size, " requests waiting)"));
    }
    queue_.push_back({absl::Now(), std::move(task)});
    return absl::OkStatus();
  }

  // Stops accepting tasks, lets the executors finish everything queued and
  // joins them. Idempotent.
  void Shutdown() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& thread : executors_) {
      if (thread.joinable()) thread.join();
    }
  }

  int depth() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(queue_.size());
  }

 private:
  BatchQueue(const BatchQueueOptions& options, ExecuteFn execute)
      : options_(options), execute_(std::move(execute)) {
    for (int i = 0; i < options_.num_executors; ++i) {
      executors_.emplace_back([this] { ExecutorLoop(); });
    }
  }

  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  }
  bool FullOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(queue_.size()) >= options_.max_batch_size ||
           stopping_;
  }

  // Waits, with a task queued, until a batch is due.
  void AwaitBatchDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!queue_.empty() && !FullOrStopping()) {
      const absl::Time due = queue_.front().enqueued + options_.max_queue_delay;
      if (absl::Now() >= due) return;
      mu_.AwaitWithDeadline(absl::Condition(this, &BatchQueue::FullOrStopping),
                            due);
    }
  }

  void ExecutorLoop() {
    while (true) {
      Batch batch;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &BatchQueue::HasWorkOrStopping));
        AwaitBatchDue();
        if (queue_.empty()) {
          if (stopping_) return;  // drained
          continue;  // another executor took the tasks
        }
        const size_t take = std::min<size_t>(queue_.size(),
                                             options_.max_batch_size);
        batch.reserve(take);
        for (size_t i = 0; i < take; ++i) {
          batch.push_back(std::move(queue_.front().task));
          queue_.pop_front();
        }
      }
      execute_(std::move(batch));
    }
  }

  const BatchQueueOptions options_;
  const ExecuteFn execute_;
  mutable absl::Mutex mu_;
  struct Entry {
    absl::Time enqueued;
    std::unique_ptr<TaskT> task;
  };
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> executors_;
};

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_BATCH_QUEUE_H_
