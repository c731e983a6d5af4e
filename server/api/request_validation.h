// Turns a ScoreRequest into model input, or says precisely what is wrong.
//
// Every error is INVALID_ARGUMENT and its message starts with the offending
// field ("features['amount']: ...", "token_ids[3]: ..."). Text a client sent
// is quoted in a message at most kMaxQuotedBytes long (QuoteClientText), so
// that no error outgrows what a client accepts as status metadata. No gRPC
// types beyond the generated messages; thread-safe (pure functions of their
// inputs).
#ifndef FUSION_SERVER_API_REQUEST_VALIDATION_H_
#define FUSION_SERVER_API_REQUEST_VALIDATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fusion/v1/scoring.pb.h"
#include "google/protobuf/message.h"
#include "server/api/model_signature.h"
#include "server/runtime/model_runtime.h"

namespace fusion::api {

struct ValidatedRequest {
  runtime::ScoringInput input;
  std::vector<std::string> tokens;  // filled only when attention is asked
  bool truncated = false;
};

// Checks `request` against the model `signature` describes (a Servable's:
// SignatureOf). Text is tokenized here, by the signature's tokenizer. Checks
// CheckWireTypes(request) first.
absl::StatusOr<ValidatedRequest> ValidateScoreRequest(
    const fusion::v1::ScoreRequest& request, const ModelSignature& signature);

// INVALID_ARGUMENT when `message`, or a message field inside it, holds a
// field number its type declares but sent with another wire type (e.g.
// `text` as a varint): protobuf's parser keeps such a field as unknown and
// leaves the declared one unset, so the request would silently mean
// something else than what was sent. Field numbers the type does not
// declare pass (protobuf's forward compatibility). Map entries are not
// inspected: protobuf drops their unknown fields while parsing.
absl::Status CheckWireTypes(const google::protobuf::Message& message);

// Client text as an error message quotes it: as is up to kMaxQuotedBytes,
// else its first bytes (cut at a UTF-8 boundary), "...", and its size.
inline constexpr size_t kMaxQuotedBytes = 64;
std::string QuoteClientText(absl::string_view text);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_REQUEST_VALIDATION_H_
