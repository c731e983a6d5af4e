// libFuzzer target: the v2 HTTP/JSON infer route without the socket, as
// http_routes.cc's HandleInfer runs it: ParseInferRequest
// (api/v2/http_json_request.cc) on the body and the
// Inference-Header-Content-Length header, InferenceCore::Infer on what
// parses, EncodeInferResponse on the answer.
//
// Input: the body; or "#<header value>\n<body>" for a request carrying the
// header (binary tensor data). Checks: a refused body is INVALID_ARGUMENT;
// the core's answer passes infer_check.h; an answer encodes, and only binary
// outputs follow its JSON.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "server/api/v2/http_json.h"
#include "server/api/v2/inference_core.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_model.h"
#include "tests/fuzz/infer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusion;  // NOLINT: fuzz entry point
  static const api::v2::InferenceCore* const core =
      new api::v2::InferenceCore(&fuzz::FuzzModel::Get().state());

  absl::string_view body(reinterpret_cast<const char*>(data), size);
  std::optional<absl::string_view> header;
  if (!body.empty() && body.front() == '#') {
    const size_t end = body.find('\n');
    if (end == absl::string_view::npos) return 0;
    header = body.substr(1, end - 1);
    body.remove_prefix(end + 1);
  }
  const auto parsed =
      api::v2::ParseInferRequest(body, header, "fusion", /*model_version=*/"");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               parsed.status().ToString());
    return 0;
  }
  const auto answer = fuzz::InferAndWait(*core, parsed->request);
  fuzz::CheckInferAnswer(parsed->request, answer);
  if (!answer.ok()) return 0;
  const auto encoded = api::v2::EncodeInferResponse(*answer, parsed->encoding);
  FUZZ_CHECK(encoded.ok(), encoded.status().ToString());
  FUZZ_CHECK(encoded->json_size <= encoded->body.size(), "json_size ",
             encoded->json_size, " of ", encoded->body.size());
  FUZZ_CHECK(encoded->has_binary || encoded->json_size == encoded->body.size(),
             "bytes after the JSON, but no binary output");
  return 0;
}
