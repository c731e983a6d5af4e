// The narrow interface between the server and a model. It speaks plain C++
// types, so the batcher, the API layer and their tests never see a tensor;
// tests plug in a fake, production uses TorchModelRuntime.
#ifndef FUSION_SERVER_RUNTIME_MODEL_RUNTIME_H_
#define FUSION_SERVER_RUNTIME_MODEL_RUNTIME_H_

#include <cstdint>
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

class ModelRuntime {
 public:
  virtual ~ModelRuntime() = default;

  // Computes a batch; returns one output per input, in order. Thread-safe:
  // several executors may call it at once. An error fails the whole batch
  // (INTERNAL with the model's message) and leaves the runtime usable.
  virtual absl::StatusOr<std::vector<ScoringOutput>> RunBatch(
      absl::Span<const ScoringInput* const> batch) = 0;

  // "cpu" or "cuda:N".
  virtual std::string device() const = 0;
};

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_MODEL_RUNTIME_H_
