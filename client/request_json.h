// JSON <-> fusion.v1 messages for the CLI and the load generator, and the
// parsing of command-line feature assignments. Pure functions; thread-safe.
//
// A request line is a JSON object with any of:
//   request_id     string or integer
//   text           string           | token_ids       [int, ...]
//   features       {"name": number} | feature_vector  [number, ...]
//   attention      "none" | "mean" | "per-head" (or 0 / 1 / 2)
//   model, model_version  string;   priority  integer >= 0
// Other keys are ignored, so golden.jsonl lines are valid requests. When a
// line carries both forms (golden lines do), `text` wins over `token_ids`
// and `features` over `feature_vector`.
#ifndef FUSION_CLIENT_REQUEST_JSON_H_
#define FUSION_CLIENT_REQUEST_JSON_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fusion/v1/scoring.pb.h"
#include "nlohmann/json.hpp"

namespace fusion::client {

// "none" | "mean" | "per-head" (also "per_head"), case-insensitive.
absl::StatusOr<fusion::v1::AttentionDetail> ParseAttention(
    absl::string_view text);
const char* AttentionName(fusion::v1::AttentionDetail detail);

// "NAME=VALUE" with a non-empty NAME and a finite number VALUE.
// INVALID_ARGUMENT whose message quotes the input and says what is wrong.
absl::StatusOr<std::pair<std::string, float>> ParseFeatureAssignment(
    absl::string_view text);

// Adds every assignment to request->features; INVALID_ARGUMENT for a bad
// one or for a name given twice.
absl::Status AddFeatureAssignments(const std::vector<std::string>& assignments,
                                   fusion::v1::ScoreRequest* request);

// A request from a parsed JSON value (see above). INVALID_ARGUMENT names the
// offending key.
absl::StatusOr<fusion::v1::ScoreRequest> RequestFromJson(
    const nlohmann::json& json);

// The same from one line of text (JSON syntax errors included).
absl::StatusOr<fusion::v1::ScoreRequest> ParseRequestLine(
    absl::string_view line);

// A response as JSON: request_id, model, model_version, score,
// probabilities, truncated, timing{queue_us, compute_us, batch_size,
// total_us}, and attention{tokens, feature_names, text_to_features,
// features_to_text} (matrices nested by their shapes) when present.
nlohmann::json ResponseToJson(const fusion::v1::ScoreResponse& response);

// {"request_id": ..., "error": {"code": "NAME", "code_number": n,
// "message": ...}} for a request that failed.
nlohmann::json ErrorToJson(const std::string& request_id,
                           const absl::Status& status);

// The float as the shortest decimal that reads back as the same float, so
// JSON shows 0.1060673 rather than 0.10606729984283447.
double Tidy(float value);

// Metadata as JSON, with the proto's field names.
nlohmann::json MetadataToJson(const fusion::v1::ModelMetadata& metadata);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_REQUEST_JSON_H_
