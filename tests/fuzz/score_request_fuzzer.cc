// libFuzzer target: a native Score call from its raw request bytes, as
// ScoringServiceImpl::Score handles them: the bytes in a gRPC ByteBuffer,
// parsed by the server's codec (api/byte_buffer_codec.h), validated and
// converted to model input (api/request_validation.h), queued, batched and
// computed (FakeModelRuntime), answered (api/response_builder.h) and
// serialized. Checks: a parsed request is refused only with
// INVALID_ARGUMENT (or NOT_FOUND for another model); a validated request
// is model input the runtime's contract allows ([CLS] ... [SEP] within the
// vocab and max_tokens, one finite value per feature); the whole path
// refuses exactly what validation refuses; an answer has one probability
// per class and attention shaped by the request's tokens and features.
#include <grpcpp/support/slice.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "server/api/byte_buffer_codec.h"
#include "server/api/model_signature.h"
#include "server/api/request_validation.h"
#include "server/api/scoring_service.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_model.h"

namespace fusion::fuzz {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

void CheckInput(const api::ValidatedRequest& v,
                const serving::Servable& model) {
  const auto& config = model.config();
  const auto& ids = v.input.token_ids;
  FUZZ_CHECK(ids.size() >= 1 && ids.size() <= size_t(config.max_tokens()),
             ids.size(), " token ids");
  for (int32_t id : ids) {
    FUZZ_CHECK(id >= 0 && id < model.tokenizer().vocab_size(), "id ", id);
  }
  FUZZ_CHECK(v.input.features.size() == size_t(config.features_size()),
             v.input.features.size(), " features");
  for (float value : v.input.features) {
    FUZZ_CHECK(std::isfinite(value), "feature value ", value);
  }
  const bool attention = v.input.attention != runtime::AttentionDetail::kNone;
  FUZZ_CHECK(v.tokens.size() == (attention ? ids.size() : 0), v.tokens.size(),
             " token strings for ", ids.size(), " ids");
}

void CheckResponse(const ScoreResponse& response,
                   const api::ValidatedRequest& v,
                   const serving::Servable& model) {
  const auto& config = model.config();
  FUZZ_CHECK(response.probabilities_size() == config.classes_size(),
             response.probabilities_size(), " probabilities");
  const bool attention = v.input.attention != runtime::AttentionDetail::kNone;
  FUZZ_CHECK(response.has_attention() == attention,
             "attention present: ", response.has_attention());
  if (!attention) return;
  const auto& a = response.attention();
  const int64_t tokens = static_cast<int64_t>(v.input.token_ids.size());
  FUZZ_CHECK(a.tokens_size() == tokens, a.tokens_size(), " tokens");
  FUZZ_CHECK(a.feature_names_size() == config.features_size(),
             a.feature_names_size(), " feature names");
  int64_t elements = 1;
  for (int32_t d : a.text_to_features_shape()) elements *= d;
  FUZZ_CHECK(elements == a.text_to_features_size(), "shape holds ", elements,
             ", data ", a.text_to_features_size());
  const int dims = a.text_to_features_shape_size();
  FUZZ_CHECK(dims >= 2 && a.text_to_features_shape(dims - 2) == tokens &&
                 a.text_to_features_shape(dims - 1) == config.features_size(),
             "text_to_features shape");
}

}  // namespace
}  // namespace fusion::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusion;  // NOLINT: fuzz entry point
  fuzz::FuzzModel& fuzz_model = fuzz::FuzzModel::Get();

  // protobuf logs each string that is not UTF-8; the status says it.
  const google::protobuf::LogSilencer quiet;
  grpc::Slice slice(data, size);
  const grpc::ByteBuffer bytes(&slice, 1);
  fusion::v1::ScoreRequest request;
  if (!api::FromByteBuffer(bytes, request)) return 0;
  // The service refuses a map entry of the wrong wire type after parsing.
  const absl::Status map_wire =
      api::CheckMapWireTypes(bytes, *fusion::v1::ScoreRequest::descriptor());
  FUZZ_CHECK(
      map_wire.ok() || map_wire.code() == absl::StatusCode::kInvalidArgument,
      map_wire.ToString());
  if (!map_wire.ok()) return 0;

  // Validation alone, when the request names this model.
  auto model =
      fuzz_model.registry().Find(request.model(), request.model_version());
  absl::StatusOr<api::ValidatedRequest> validated =
      absl::NotFoundError("another model");
  if (model.ok()) {
    validated = api::ValidateScoreRequest(request, api::SignatureOf(**model));
    if (validated.ok()) {
      fuzz::CheckInput(*validated, **model);
    } else {
      FUZZ_CHECK(
          validated.status().code() == absl::StatusCode::kInvalidArgument,
          validated.status().ToString());
    }
  }

  // The whole path, as the gRPC service takes it.
  absl::Notification answered;
  absl::StatusOr<fusion::v1::ScoreResponse> response;
  const absl::Status submitted = api::SubmitScoreRequest(
      fuzz_model.state(), request, absl::InfiniteFuture(), [] { return false; },
      [&](absl::StatusOr<fusion::v1::ScoreResponse> r) {
        response = std::move(r);
        answered.Notify();
      },
      nullptr);
  if (!model.ok()) {
    FUZZ_CHECK(submitted.code() == model.status().code(), submitted.ToString());
    return 0;
  }
  FUZZ_CHECK(submitted == validated.status(),
             "submitted: ", submitted.ToString(),
             ", validated: ", validated.status().ToString());
  if (!submitted.ok()) return 0;
  answered.WaitForNotification();
  FUZZ_CHECK(response.ok(), response.status().ToString());
  fuzz::CheckResponse(*response, *validated, **model);
  api::ToByteBuffer(*response);
  return 0;
}
