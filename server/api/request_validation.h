// Turns a ScoreRequest into model input, or says precisely what is wrong.
//
// Every error is INVALID_ARGUMENT and its message starts with the offending
// field ("features['amount']: ...", "token_ids[3]: ..."). No gRPC types
// beyond the generated messages; thread-safe (pure function of its inputs).
#ifndef FUSION_SERVER_API_REQUEST_VALIDATION_H_
#define FUSION_SERVER_API_REQUEST_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fusion/v1/scoring.pb.h"
#include "server/api/model_signature.h"
#include "server/runtime/model_runtime.h"

namespace fusion::api {

struct ValidatedRequest {
  runtime::ScoringInput input;
  std::vector<std::string> tokens;  // filled only when attention is asked
  bool truncated = false;
};

// Checks `request` against the model `signature` describes (a Servable's:
// SignatureOf). Text is tokenized here, by the signature's tokenizer.
absl::StatusOr<ValidatedRequest> ValidateScoreRequest(
    const fusion::v1::ScoreRequest& request, const ModelSignature& signature);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_REQUEST_VALIDATION_H_
