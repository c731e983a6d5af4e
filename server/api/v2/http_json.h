// The JSON side of the Open Inference Protocol over HTTP (KServe v2 REST,
// with Triton's binary tensor data extension): pure conversions between
// HTTP bodies and the protos InferenceCore speaks, without HTTP types
// (http_routes.cc does the transport).
//
// Infer requests (ParseInferRequest):
//   {"id": str, "parameters": {...},
//    "inputs": [{"name", "shape": [int...], "datatype", "parameters",
//                "data": [...]}],
//    "outputs": [{"name", "parameters": {...}}]}
//   `data` is row-major: a flat array of product(shape) elements, arrays
//   nested exactly as `shape` (each level as long as its dimension), or a
//   lone scalar for one element. Elements: BOOL true/false; INT*/UINT*
//   integers in the type's range; FP32/FP64 numbers (FP32 within its
//   range); BYTES strings. FP16/BF16 only as binary data. Binary tensor data:
//   with the HTTP header Inference-Header-Content-Length: N, the first N body
//   bytes are the JSON and each input with parameters {"binary_data_size": K}
//   takes the next K bytes of the rest, in input order (little-endian,
//   BYTES elements as a 4-byte little-endian length and the bytes); those
//   inputs carry no `data`, and the rest of the body must be used up
//   exactly. N = 0 (Triton's raw binary request without JSON) is refused.
//   Representation: when any input is binary, every input becomes
//   raw_input_contents (the JSON ones encoded little-endian); otherwise
//   every input is typed `contents`.
//   Parameters: JSON bool -> bool_param, integer -> int64_param (uint64_param
//   only above INT64_MAX), other number -> double_param, string ->
//   string_param; null, arrays and objects are refused. Every parameter is
//   kept in the proto (including binary_data_size, binary_data_output and
//   binary_data, which the core ignores). "binary_data_output" (request)
//   and "binary_data" (output) must be booleans and "binary_data_size" a
//   non-negative integer; "shared_memory_region" and "classification"
//   (Triton extensions fusionserve lacks) are refused rather than ignored.
//   Errors are INVALID_ARGUMENT naming the field and, once known, the
//   tensor, e.g. "inputs[1].data[3] (FEATURES): expected a number, got a
//   string".
//
// Infer responses (EncodeInferResponse):
//   {"id" (only when non-empty), "model_name", "model_version",
//    "parameters" (only when non-empty),
//    "outputs": [{"name", "datatype", "shape", "parameters", "data"}]}
//   Data comes from typed contents, or from raw_output_contents when the
//   response has them; it is flat, row-major. FP32/FP64 are JSON numbers
//   (FP32 printed in the shortest form that reads back as the same float;
//   NaN and infinities, which JSON lacks, as null); FP16/BF16 are widened
//   to numbers; BYTES are strings (invalid UTF-8 replaced by U+FFFD).
//   An output encoded as binary (per OutputEncoding) carries "parameters":
//   {"binary_data_size": K} and no "data", and its K bytes follow the JSON
//   in output order; the caller then sends Inference-Header-Content-Length
//   = json_size and Content-Type application/octet-stream (as Triton).
//
// Metadata, config and statistics render the proto fields under their
// proto names (as Triton's HTTP API, and protobuf's JSON mapping with
// preserved field names), with two differences from protobuf's mapping:
// 64-bit integers are JSON numbers, not strings (perf_analyzer reads the
// statistics with GetUint64), and NaN/infinities are null. Every scalar
// and repeated field is printed, defaults included; an unset message
// field is printed (as its defaults) only in statistics, so each
// duration {"count","ns"} of "inference_stats" is always there; enums are
// printed by name.
//   server metadata  {"name", "version", "extensions": [...]}
//   model metadata   {"name", "versions", "platform",
//                     "inputs": [{"name", "datatype", "shape"}], "outputs"}
//   model config     the ModelConfig itself (not wrapped in {"config"}),
//                    as Triton's GET .../config
//   statistics       {"model_stats": [{"name", "version", "last_inference",
//                     "inference_count", "execution_count",
//                     "inference_stats": {"success": {"count", "ns"},
//                     "fail", "queue", "compute_input", "compute_infer",
//                     "compute_output", "cache_hit", "cache_miss"},
//                     "batch_stats": [{"batch_size", "compute_input",
//                     "compute_infer", "compute_output"}]}]}
//   errors           {"error": "<message>"}
#ifndef FUSION_SERVER_API_V2_HTTP_JSON_H_
#define FUSION_SERVER_API_V2_HTTP_JSON_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "inference/grpc_service.pb.h"

namespace fusion::api::v2 {

// The HTTP header that splits a body into JSON and binary tensor data.
inline constexpr char kInferHeaderContentLength[] =
    "Inference-Header-Content-Length";

// Which outputs of an infer response are sent as binary data.
struct OutputEncoding {
  // The request's "binary_data_output" (false when absent).
  bool binary_default = false;
  // Each requested output's "binary_data", where given.
  std::map<std::string, bool> binary_by_output;

  bool Binary(const std::string& output_name) const;
};

struct ParsedInferRequest {
  inference::ModelInferRequest request;
  OutputEncoding encoding;
};

// Parses an infer request body for `model_name` and `model_version` (from
// the URL; "model_name" and "model_version" in the JSON are ignored).
// `header_content_length`: the value of Inference-Header-Content-Length,
// nullopt when the header is absent (the whole body is then JSON).
absl::StatusOr<ParsedInferRequest> ParseInferRequest(
    absl::string_view body,
    std::optional<absl::string_view> header_content_length,
    const std::string& model_name, const std::string& model_version);

struct EncodedInferResponse {
  std::string body;         // the JSON, then any binary output data
  size_t json_size = 0;     // the JSON's length (the whole body if no binary)
  bool has_binary = false;  // some output is binary: send the header
};

// INTERNAL when the response's tensor data does not match its outputs'
// shapes and datatypes.
absl::StatusOr<EncodedInferResponse> EncodeInferResponse(
    const inference::ModelInferResponse& response,
    const OutputEncoding& encoding);

std::string ServerMetadataToJson(const inference::ServerMetadataResponse& m);
std::string ModelMetadataToJson(const inference::ModelMetadataResponse& m);
// The config itself, as Triton's HTTP API answers.
std::string ModelConfigToJson(const inference::ModelConfigResponse& c);
std::string ModelStatisticsToJson(const inference::ModelStatisticsResponse& s);
// {"name": name, "ready": ready}.
std::string ModelReadyToJson(const std::string& name, bool ready);
// {"error": message}.
std::string ErrorToJson(absl::string_view message);

// The HTTP status for an error: INVALID_ARGUMENT, FAILED_PRECONDITION and
// OUT_OF_RANGE 400; NOT_FOUND 404; RESOURCE_EXHAUSTED 429; CANCELLED 499;
// UNIMPLEMENTED 501; UNAVAILABLE 503; DEADLINE_EXCEEDED 504; OK 200;
// anything else 500.
int HttpStatusFromCode(absl::StatusCode code);

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_HTTP_JSON_H_
