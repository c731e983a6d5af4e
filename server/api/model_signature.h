// What request validation reads of a model, and nothing else: its config
// (max_tokens, features, priority levels), its tokenizer, and where each
// named feature sits in the model's input. Lets validation be called, and
// tested, without a Servable and its executor threads.
//
// A view: what it refers to must outlive it. Building one copies no vocab,
// config or map (SignatureOf allocates nothing), so callers build one per
// request. Thread-safe to read concurrently if `feature_index` is.
#ifndef FUSION_SERVER_API_MODEL_SIGNATURE_H_
#define FUSION_SERVER_API_MODEL_SIGNATURE_H_

#include <functional>
#include <optional>
#include <string>

#include "fusion/v1/model_config.pb.h"
#include "server/text/wordpiece_tokenizer.h"

namespace fusion::serving {
class Servable;
}  // namespace fusion::serving

namespace fusion::api {

struct ModelSignature {
  const fusion::v1::ModelConfig& config;
  // Its options are the model's: max_tokens and the truncation policy apply
  // to text.
  const text::WordPieceTokenizer& tokenizer;
  // The position of a feature in the model's input (an index into
  // config.features()), or nullopt when the model has no such feature.
  std::function<std::optional<int>(const std::string&)> feature_index;
};

// The signature of `servable`; valid while `servable` lives.
ModelSignature SignatureOf(const serving::Servable& servable);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_MODEL_SIGNATURE_H_
