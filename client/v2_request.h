// fusion.v1 ScoreRequests as Open Inference Protocol (KServe v2 / Triton)
// ModelInferRequests of one row (B = 1), for `fusion-bench --protocol=v2`
// and `fusion-client v2-request`. The tensor contract is the server's
// (server/api/v2/inference_core.h):
//
//   TEXT        BYTES [1]         when the request has `text`
//   INPUT_IDS   INT64 [1,L]       else its `token_ids` (no ATTENTION_MASK:
//                                 every id is a real token)
//   FEATURES    FP32  [1,F]       model order: `feature_vector` as is, or
//                                 `features` by name, a left-out feature
//                                 that allows missing getting its default
//   outputs     none (the server's default PROBABILITIES + SCORE), or with
//               attention: PROBABILITIES, SCORE, TEXT_TO_FEATURES_ATTENTION,
//               FEATURES_TO_TEXT_ATTENTION (per-head: output parameter
//               attention="per_head") and TOKEN_COUNT
//   parameters  "priority": native p > 0 becomes p + 1 (v2 0 = the default
//               level 0, Triton's 1..N are levels 0..N-1); p = 0 sends none
//   id          request_id; model_name: the request's model, else the
//               model the feature order came from; model_version as is.
//
// With raw contents every input's data goes in raw_input_contents (one
// entry per input, in input order, little-endian; a BYTES element is a
// 4-byte little-endian length and its bytes) and no input has `contents`.
//
// Pure functions; thread-safe.
#ifndef FUSION_CLIENT_V2_REQUEST_H_
#define FUSION_CLIENT_V2_REQUEST_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fusion/v1/scoring.pb.h"
#include "inference/grpc_service.pb.h"
#include "nlohmann/json.hpp"

namespace fusion::client {

inline constexpr char kV2Text[] = "TEXT";
inline constexpr char kV2InputIds[] = "INPUT_IDS";
inline constexpr char kV2Features[] = "FEATURES";
inline constexpr char kV2Probabilities[] = "PROBABILITIES";
inline constexpr char kV2Score[] = "SCORE";
inline constexpr char kV2TextToFeatures[] = "TEXT_TO_FEATURES_ATTENTION";
inline constexpr char kV2FeaturesToText[] = "FEATURES_TO_TEXT_ATTENTION";
inline constexpr char kV2TokenCount[] = "TOKEN_COUNT";

// What the conversion needs to know of the model.
struct V2ModelInfo {
  std::string name;  // model_name for requests that name no model
  struct Feature {
    std::string name;
    bool allow_missing = false;
    float default_value = 0;
  };
  std::vector<Feature> features;  // model order
};

// From the native GetModelMetadata answer.
V2ModelInfo V2ModelInfoFromMetadata(const fusion::v1::ModelMetadata& metadata);

// From a list of names in model order (every feature required).
V2ModelInfo V2ModelInfoFromNames(const std::string& model_name,
                                 const std::vector<std::string>& names);

struct V2Options {
  bool raw = false;  // raw_input_contents instead of typed contents
};

// INVALID_ARGUMENT when the request has neither text nor token_ids, names a
// feature the model lacks, leaves out a required one, or has a
// feature_vector of the wrong length.
absl::StatusOr<inference::ModelInferRequest> ToV2Request(
    const fusion::v1::ScoreRequest& request, const V2ModelInfo& model,
    const V2Options& options = {});

// Little-endian encodings of raw_input_contents.
std::string EncodeRawBytes(const std::vector<std::string>& elements);
std::string EncodeRawInt64(const std::vector<int64_t>& values);
std::string EncodeRawFp32(const std::vector<float>& values);

// The request as the body of the KServe v2 REST call
// (POST /v2/models/NAME[/versions/V]/infer): {"id", "parameters",
// "inputs": [{"name", "datatype", "shape", "data"}], "outputs": [{"name",
// "parameters"}]}; "data" is flat, row-major, and raw contents are decoded
// into it. Keys in that order (parameters sorted by name); empty
// parameters/outputs are left out. INVALID_ARGUMENT for raw contents that do
// not match their tensor.
absl::StatusOr<nlohmann::ordered_json> V2RequestToJson(
    const inference::ModelInferRequest& request);

// "/v2/models/NAME[/versions/V]/infer".
std::string V2InferPath(const inference::ModelInferRequest& request);

// The protobuf text format.
std::string V2RequestToText(const inference::ModelInferRequest& request);

// A status code for a ModelStreamInfer error_message: the canonical code
// name it starts with ("NOT_FOUND: ...", "[StatusCode.NOT_FOUND] ..."),
// else UNKNOWN. Never OK.
absl::StatusCode V2StreamErrorCode(absl::string_view message);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_V2_REQUEST_H_
