#include "server/api/model_signature.h"

#include "server/serving/servable.h"

namespace fusion::api {

ModelSignature SignatureOf(const serving::Servable& servable) {
  // Captures one pointer: std::function keeps it inline, no allocation.
  return ModelSignature{servable.config(), servable.tokenizer(),
                        [s = &servable](const std::string& name) {
                          return s->FeatureIndex(name);
                        }};
}

}  // namespace fusion::api
