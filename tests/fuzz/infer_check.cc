#include "tests/fuzz/infer_check.h"

#include <cstdint>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tests/fuzz/fuzz_check.h"

namespace fusion::fuzz {
namespace {

int64_t ElementBytes(const std::string& datatype) {
  if (datatype == "FP32" || datatype == "INT32") return 4;
  return 0;
}

int64_t TypedCount(const inference::ModelInferResponse::InferOutputTensor& o) {
  if (o.datatype() == "FP32") return o.contents().fp32_contents_size();
  if (o.datatype() == "INT32") return o.contents().int_contents_size();
  return -1;
}

}  // namespace

absl::StatusOr<inference::ModelInferResponse> InferAndWait(
    const api::v2::InferenceCore& core,
    const inference::ModelInferRequest& request) {
  absl::Notification answered;
  absl::StatusOr<inference::ModelInferResponse> answer;
  core.Infer(
      request, absl::InfiniteFuture(), [] { return false; },
      [&](absl::StatusOr<inference::ModelInferResponse> r) {
        answer = std::move(r);
        answered.Notify();
      });
  answered.WaitForNotification();
  return answer;
}

void CheckInferAnswer(
    const inference::ModelInferRequest& request,
    const absl::StatusOr<inference::ModelInferResponse>& answer) {
  if (!answer.ok()) {
    const absl::StatusCode code = answer.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument ||
                   code == absl::StatusCode::kNotFound ||
                   code == absl::StatusCode::kDeadlineExceeded,
               answer.status().ToString());
    return;
  }
  const inference::ModelInferResponse& response = *answer;
  FUZZ_CHECK(response.model_name() == "fusion", response.model_name());
  FUZZ_CHECK(response.id() == request.id(), "id ", response.id());
  FUZZ_CHECK(response.outputs_size() > 0, "no outputs");
  const bool raw = request.raw_input_contents_size() > 0;
  FUZZ_CHECK(response.raw_output_contents_size() ==
                 (raw ? response.outputs_size() : 0),
             response.raw_output_contents_size(), " raw outputs");
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& output = response.outputs(i);
    int64_t elements = 1;
    for (int64_t d : output.shape()) {
      FUZZ_CHECK(d >= 0, output.name(), " has dimension ", d);
      elements *= d;
    }
    if (raw) {
      FUZZ_CHECK(static_cast<int64_t>(response.raw_output_contents(i).size()) ==
                     elements * ElementBytes(output.datatype()),
                 output.name(), ": ", response.raw_output_contents(i).size(),
                 " raw bytes for ", elements, " ", output.datatype());
    } else {
      FUZZ_CHECK(TypedCount(output) == elements, output.name(), ": ",
                 TypedCount(output), " values for ", elements);
    }
  }
}

}  // namespace fusion::fuzz
