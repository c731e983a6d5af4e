// The narrow interface between the server and a model. It speaks plain C++
// types, so the batcher, the API layer and their tests never see a tensor;
// tests plug in a fake, production uses TorchModelRuntime.
#ifndef FUSION_SERVER_RUNTIME_MODEL_RUNTIME_H_
#define FUSION_SERVER_RUNTIME_MODEL_RUNTIME_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace fusion::runtime {

enum class AttentionDetail { kNone, kMean, kPerHead };

// One validated request, ready for the model.
struct ScoringInput {
  std::vector<int32_t> token_ids;  // [CLS] ... [SEP], within the vocab
  std::vector<float> features;     // raw values, model order, all finite
  AttentionDetail attention = AttentionDetail::kNone;
};

// The model's answer for one request.
struct ScoringOutput {
  std::vector<float> probabilities;  // one per class
  // Filled only when the input asked for attention. Row-major; shapes are
  // [heads, tokens, features] / [heads, features, tokens] for kPerHead and
  // [tokens, features] / [features, tokens] for kMean, where tokens is the
  // request's own token count (padding cut away).
  std::vector<float> text_to_features;
  std::vector<int32_t> text_to_features_shape;
  std::vector<float> features_to_text;
  std::vector<int32_t> features_to_text_shape;
};

// The arithmetic a runtime's forwards use, decided at load.
struct PrecisionPlan {
  bool bf16 = false;  // false: every forward in fp32
  // With bf16: a batch of fewer positions runs in fp32, where bf16 is
  // slower; 0: every batch in bf16. Positions: requests x (padded tokens +
  // features), each feature being a token of the cross-attention.
  int64_t bf16_min_positions = 0;
};

// A batch collated by ModelRuntime::Prepare, to be passed to Run of the same
// runtime. Opaque: each runtime keeps its tensors in a subclass.
class PreparedBatch {
 public:
  virtual ~PreparedBatch() = default;
};

// Two stages, so that collating batch N+1 can overlap the forward of batch N.
// Thread-safety: Prepare and Run may be called concurrently from several
// threads, each call for a different batch. An error fails the whole batch
// and leaves the runtime usable: INVALID_ARGUMENT for a malformed input,
// INTERNAL (with the model's message) when the model or Torch fails.
class ModelRuntime {
 public:
  virtual ~ModelRuntime() = default;

  // Collation only: validates the inputs and pads them into tensors (on a
  // GPU: pinned host memory and an asynchronous copy to the device). The
  // inputs must outlive the returned batch, which Run reads again.
  virtual absl::StatusOr<std::unique_ptr<PreparedBatch>> Prepare(
      absl::Span<const ScoringInput* const> batch) = 0;

  // The forward, split back per request: one output per input, in order.
  // `batch` comes from this runtime's Prepare; Run it at most once.
  virtual absl::StatusOr<std::vector<ScoringOutput>> Run(
      PreparedBatch& batch) = 0;

  // Prepare, then Run, on the calling thread.
  absl::StatusOr<std::vector<ScoringOutput>> RunBatch(
      absl::Span<const ScoringInput* const> batch) {
    auto prepared = Prepare(batch);
    if (!prepared.ok()) return prepared.status();
    return Run(**prepared);
  }

  // "cpu" or "cuda:N".
  virtual std::string device() const = 0;

  // CPU threads one forward uses: how many executors the CPUs can feed.
  virtual int intra_op_threads() const = 0;

  // Fixed after construction; fp32 unless the runtime says otherwise.
  virtual PrecisionPlan precision() const { return {}; }
};

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_MODEL_RUNTIME_H_
