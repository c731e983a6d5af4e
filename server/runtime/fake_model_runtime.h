// A ModelRuntime for tests: deterministic outputs, records the batch sizes
// it saw, and can be told to fail or to hold a batch until released.
#ifndef FUSION_SERVER_RUNTIME_FAKE_MODEL_RUNTIME_H_
#define FUSION_SERVER_RUNTIME_FAKE_MODEL_RUNTIME_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/runtime/model_runtime.h"

namespace fusion::runtime {

class FakeModelRuntime final : public ModelRuntime {
 public:
  explicit FakeModelRuntime(int heads = 2) : heads_(heads) {}

  // probabilities = {1 - s, s} with s = token count / 1000; attention all
  // 1/features (text→features) and 1/tokens (features→text).
  absl::StatusOr<std::vector<ScoringOutput>> RunBatch(
      absl::Span<const ScoringInput* const> batch) override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&released_));
    batch_sizes_.push_back(static_cast<int>(batch.size()));
    if (!fail_with_.ok()) {
      absl::Status status = fail_with_;
      fail_with_ = absl::OkStatus();
      return status;
    }
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
          out.text_to_features_shape.insert(out.text_to_features_shape.begin(), h);
          out.features_to_text_shape.insert(out.features_to_text_shape.begin(), h);
        }
      }
      outputs.push_back(std::move(out));
    }
    return outputs;
  }

  std::string device() const override { return "fake"; }

  // The next batch fails with `status`.
  void FailNextBatch(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_with_ = std::move(status);
  }
  // Batches wait inside RunBatch while held.
  void Hold() {
    absl::MutexLock lock(&mu_);
    released_ = false;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  std::vector<int> batch_sizes() const {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }

 private:
  const int heads_;
  mutable absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status fail_with_ ABSL_GUARDED_BY(mu_);
  std::vector<int> batch_sizes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_FAKE_MODEL_RUNTIME_H_
