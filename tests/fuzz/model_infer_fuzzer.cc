// libFuzzer target: a KServe v2 ModelInfer call from its raw request bytes,
// as InferenceServiceImpl::ModelInfer handles them: the bytes in a gRPC
// ByteBuffer, parsed by the server's codec, then InferenceCore::Infer
// (api/v2/inference_core.h: tensors read by infer_tensors.h, each row
// converted to a native request and validated, queued, computed by
// FakeModelRuntime, the response built), then serialized. The response is
// also rendered as the HTTP/JSON API would (http_json.h), which must
// succeed for anything the core answers. See infer_check.h for the checks.
#include <grpcpp/impl/codegen/proto_utils.h>  // protobuf's SerializationTraits
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>

#include "google/protobuf/stubs/logging.h"
#include "server/api/byte_buffer_codec.h"
#include "server/api/v2/http_json.h"
#include "server/api/v2/inference_core.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_model.h"
#include "tests/fuzz/infer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusion;  // NOLINT: fuzz entry point
  static const api::v2::InferenceCore* const core =
      new api::v2::InferenceCore(&fuzz::FuzzModel::Get().state());

  // protobuf logs each string that is not UTF-8; the status says it.
  const google::protobuf::LogSilencer quiet;
  grpc::Slice slice(data, size);
  const grpc::ByteBuffer bytes(&slice, 1);
  inference::ModelInferRequest request;
  if (!api::FromByteBuffer(bytes, request)) return 0;
  // The service refuses a map entry of the wrong wire type after parsing.
  const absl::Status map_wire = api::CheckMapWireTypes(
      bytes, *inference::ModelInferRequest::descriptor());
  FUZZ_CHECK(
      map_wire.ok() || map_wire.code() == absl::StatusCode::kInvalidArgument,
      map_wire.ToString());
  if (!map_wire.ok()) return 0;

  const auto answer = fuzz::InferAndWait(*core, request);
  fuzz::CheckInferAnswer(request, answer);
  if (!answer.ok()) return 0;
  api::ToByteBuffer(*answer);
  const auto json = api::v2::EncodeInferResponse(*answer, {});
  FUZZ_CHECK(json.ok(), json.status().ToString());
  return 0;
}
