// A ModelRuntime for tests: deterministic outputs, records the batches it
// saw and when each stage ran, and can be told to fail a stage, to fail
// every batch holding a marked input, or to hold the forward until released.
#ifndef FUSION_SERVER_RUNTIME_FAKE_MODEL_RUNTIME_H_
#define FUSION_SERVER_RUNTIME_FAKE_MODEL_RUNTIME_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/runtime/model_runtime.h"

namespace fusion::runtime {

class FakeModelRuntime final : public ModelRuntime {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // One batch, in Prepare order. run_* stay default (the clock's epoch)
  // until Run starts / returns; run_start is taken before waiting out a
  // Hold().
  struct BatchEvents {
    int size = 0;
    TimePoint prepare_start, prepare_end, run_start, run_end;
  };

  explicit FakeModelRuntime(int heads = 2) : heads_(heads) {}

  absl::StatusOr<std::unique_ptr<PreparedBatch>> Prepare(
      absl::Span<const ScoringInput* const> batch) override {
    absl::MutexLock lock(&mu_);
    BatchEvents events;
    events.size = static_cast<int>(batch.size());
    events.prepare_start = Now();
    if (!fail_prepare_with_.ok()) {
      events.prepare_end = Now();
      events_.push_back(events);
      return std::exchange(fail_prepare_with_, absl::OkStatus());
    }
    auto prepared = std::make_unique<FakePreparedBatch>();
    prepared->index = static_cast<int>(events_.size());
    prepared->inputs.assign(batch.begin(), batch.end());
    events.prepare_end = Now();
    events_.push_back(events);
    return prepared;
  }

  // probabilities = {1 - s, s} with s = token count / 1000; attention all
  // 1/features (text→features) and 1/tokens (features→text).
  absl::StatusOr<std::vector<ScoringOutput>> Run(
      PreparedBatch& batch) override {
    auto& prepared = static_cast<FakePreparedBatch&>(batch);
    absl::MutexLock lock(&mu_);
    events_[prepared.index].run_start = Now();
    ++runs_started_;
    mu_.Await(absl::Condition(&released_));  // Prepare may grow events_ here
    batch_sizes_.push_back(static_cast<int>(prepared.inputs.size()));
    events_[prepared.index].run_end = Now();
    if (!fail_run_with_.ok()) {
      return std::exchange(fail_run_with_, absl::OkStatus());
    }
    for (const ScoringInput* in : prepared.inputs) {
      for (float value : in->features) {
        if (poison_.has_value() && value == poison_->first) {
          return poison_->second;
        }
      }
    }
    return Compute(prepared.inputs);
  }

  std::string device() const override { return "fake"; }
  int intra_op_threads() const override { return 1; }

  // The next Run fails with `status`.
  void FailNextBatch(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_run_with_ = std::move(status);
  }
  // From now on every Run whose batch holds an input with a feature equal
  // to `value` fails with `status`, as a model that raises on it would.
  void PoisonFeatureValue(float value, absl::Status status) {
    absl::MutexLock lock(&mu_);
    poison_.emplace(value, std::move(status));
  }
  // The next Prepare fails with `status`.
  void FailNextPrepare(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_prepare_with_ = std::move(status);
  }
  // Batches wait inside Run while held; Prepare is never held.
  void Hold() {
    absl::MutexLock lock(&mu_);
    released_ = false;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  // Wait until `n` Prepare calls have returned / `n` Run calls have begun;
  // false if that takes longer than `timeout`, so a test fails, not hangs.
  bool AwaitPrepared(int n, absl::Duration timeout = absl::Seconds(10)) const {
    return Await(timeout, [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return static_cast<int>(events_.size()) >= n;
    });
  }
  bool AwaitRunsStarted(int n,
                        absl::Duration timeout = absl::Seconds(10)) const {
    return Await(timeout, [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return runs_started_ >= n;
    });
  }
  // Sizes of the batches that reached Run, in order.
  std::vector<int> batch_sizes() const {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }
  std::vector<BatchEvents> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  struct FakePreparedBatch final : PreparedBatch {
    int index = 0;  // into events_
    std::vector<const ScoringInput*> inputs;
  };

  static TimePoint Now() { return std::chrono::steady_clock::now(); }

  template <typename Predicate>
  bool Await(absl::Duration timeout, const Predicate& predicate) const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&predicate), timeout);
  }

  std::vector<ScoringOutput> Compute(
      const std::vector<const ScoringInput*>& batch) const {
    std::vector<ScoringOutput> outputs;
    for (const ScoringInput* in : batch) {
      ScoringOutput out;
      const float s = static_cast<float>(in->token_ids.size()) / 1000.0f;
      out.probabilities = {1.0f - s, s};
      if (in->attention != AttentionDetail::kNone) {
        const int t = static_cast<int>(in->token_ids.size());
        const int f = static_cast<int>(in->features.size());
        const int h = in->attention == AttentionDetail::kPerHead ? heads_ : 1;
        out.text_to_features.assign(h * t * f, 1.0f / f);
        out.features_to_text.assign(h * t * f, 1.0f / t);
        out.text_to_features_shape = {t, f};
        out.features_to_text_shape = {f, t};
        if (h > 1) {
          out.text_to_features_shape.insert(out.text_to_features_shape.begin(),
                                            h);
          out.features_to_text_shape.insert(out.features_to_text_shape.begin(),
                                            h);
        }
      }
      outputs.push_back(std::move(out));
    }
    return outputs;
  }

  const int heads_;
  mutable absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status fail_prepare_with_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_run_with_ ABSL_GUARDED_BY(mu_);
  std::optional<std::pair<float, absl::Status>> poison_ ABSL_GUARDED_BY(mu_);
  int runs_started_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> batch_sizes_ ABSL_GUARDED_BY(mu_);
  std::vector<BatchEvents> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_FAKE_MODEL_RUNTIME_H_
