// What the v2 fuzz targets check of an InferenceCore answer: the status of
// a refusal, and the shape of a response.
#ifndef FUSION_TESTS_FUZZ_INFER_CHECK_H_
#define FUSION_TESTS_FUZZ_INFER_CHECK_H_

#include "absl/status/statusor.h"
#include "inference/grpc_service.pb.h"
#include "server/api/v2/inference_core.h"

namespace fusion::fuzz {

// Calls core.Infer(request) as the transports do (no deadline, never
// cancelled) and waits for its answer.
absl::StatusOr<inference::ModelInferResponse> InferAndWait(
    const api::v2::InferenceCore& core,
    const inference::ModelInferRequest& request);

// Aborts unless `answer` is one InferenceCore may give to `request`: a
// refusal with INVALID_ARGUMENT, NOT_FOUND (another model) or
// DEADLINE_EXCEEDED (its "timeout" parameter); or a response whose every
// output holds exactly its shape's elements, as raw contents iff the
// request used raw contents, with the model's name and the request's id.
void CheckInferAnswer(
    const inference::ModelInferRequest& request,
    const absl::StatusOr<inference::ModelInferResponse>& answer);

}  // namespace fusion::fuzz

#endif  // FUSION_TESTS_FUZZ_INFER_CHECK_H_
