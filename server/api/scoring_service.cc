#include "server/api/scoring_service.h"

#include <deque>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/api/byte_buffer_codec.h"
#include "server/api/request_outcome.h"
#include "server/api/request_validation.h"
#include "server/api/response_builder.h"
#include "server/api/rpc_deadline.h"
#include "server/api/status_mapping.h"
#include "server/api/stream_reactor.h"

namespace fusion::api {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

// Parses a request's bytes. On failure `request` holds what could be read
// (its request_id, usually: field 1 comes first on the wire).
absl::Status ParseScoreRequest(const grpc::ByteBuffer& bytes,
                               ScoreRequest& request) {
  if (!FromByteBuffer(bytes, request)) {
    return absl::InvalidArgumentError(
        "ScoreRequest does not parse: malformed protobuf, or a string field "
        "(text, model, request_id, a feature name) that is not valid UTF-8");
  }
  if (request.features_size() == 0) return absl::OkStatus();
  return CheckMapWireTypes(bytes, *ScoreRequest::descriptor());
}

// The caller's deadline, else the model's default timeout, else none.
absl::Time TaskDeadline(absl::Time requested,
                        const fusion::v1::ModelConfig& config,
                        absl::Time arrival) {
  if (requested != absl::InfiniteFuture()) return requested;
  const int64_t timeout_us = config.batching().default_timeout_us();
  return timeout_us > 0 ? arrival + absl::Microseconds(timeout_us)
                        : absl::InfiniteFuture();
}

}  // namespace

absl::Status SubmitScoreRequest(const serving::ServingState& state,
                                const ScoreRequest& request,
                                absl::Time requested_deadline,
                                std::function<bool()> cancelled,
                                RespondFn respond,
                                const UnroutedFn& on_unrouted) {
  const absl::Time arrival = absl::Now();
  auto Unrouted = [&on_unrouted](absl::Status status) {
    if (on_unrouted) on_unrouted(status.code());
    return status;
  };
  auto registry = state.AdmittingRegistry();
  if (!registry.ok()) return Unrouted(registry.status());
  auto servable = (*registry)->Find(request.model(), request.model_version());
  if (!servable.ok()) return Unrouted(servable.status());
  // Shared with the task until it completes: a version being unloaded
  // waits for it (model_registry.h).
  std::shared_ptr<serving::Servable> model = std::move(*servable);
  model->observer().OnRequestStarted();
  // Under overload most requests are refused: before tokenizing them.
  if (absl::Status room = model->CheckRoom(); !room.ok()) {
    RecordFailure(*model, room.code(), absl::Now() - arrival);
    return room;
  }
  auto validated = ValidateScoreRequest(request, SignatureOf(*model));
  if (!validated.ok()) {
    RecordFailure(*model, validated.status().code(), absl::Now() - arrival);
    return validated.status();
  }

  const absl::Time deadline =
      TaskDeadline(requested_deadline, model->config(), arrival);
  const int priority = static_cast<int>(request.priority());
  serving::Servable& target = *model;
  auto done = [model = std::move(model), id = request.request_id(),
               tokens = std::move(validated->tokens),
               truncated = validated->truncated, arrival,
               respond = std::move(respond)](
                  absl::StatusOr<serving::ScoringResult> result) mutable {
    const absl::Duration total = absl::Now() - arrival;
    if (!result.ok()) {
      RecordFailure(*model, result.status().code(), total);
      respond(result.status());
      return;
    }
    RecordSuccess(*model, total, result->timing);
    ScoreResponse response;
    FillScoreResponse(id, *model, std::move(tokens), truncated,
                      std::move(*result), absl::ToInt64Microseconds(total),
                      response);
    respond(std::move(response));
  };
  auto task = std::make_unique<serving::ScoringTask>(
      std::move(validated->input), arrival, deadline, std::move(cancelled),
      std::move(done), priority);
  // A full queue or a draining server answers through `respond` too.
  if (absl::Status queued = target.Submit(task); !queued.ok()) {
    task->Complete(queued);
  }
  return absl::OkStatus();
}

absl::Status ScoringServiceImpl::SubmitScore(
    grpc::CallbackServerContext* context, const ScoreRequest& request,
    RespondFn respond) {
  return SubmitScoreRequest(
      *state_, request, DeadlineOf(*context),
      [context] { return context->IsCancelled(); }, std::move(respond),
      on_unrouted_);
}

absl::Status ScoringServiceImpl::Unrouted(absl::Status status) const {
  if (on_unrouted_) on_unrouted_(status.code());
  return status;
}

grpc::ServerUnaryReactor* ScoringServiceImpl::Score(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  return gate_->Begin(context, [&](grpc::ServerUnaryReactor* reactor) {
    if (!request_bytes->Valid()) return FinishNeverArrived(reactor);
    ScoreRequest request;
    if (absl::Status parsed = ParseScoreRequest(*request_bytes, request);
        !parsed.ok()) {
      reactor->Finish(ToGrpcStatus(Unrouted(parsed)));
      return;
    }
    absl::Status submitted = SubmitScore(
        context, request,
        [reactor, response_bytes](absl::StatusOr<ScoreResponse> result) {
          if (result.ok()) *response_bytes = ToByteBuffer(*result);
          reactor->Finish(ToGrpcStatus(result.status()));
        });
    if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  });
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
ScoringServiceImpl::ScoreStream(grpc::CallbackServerContext* context) {
  // A request that fails is answered on the stream, with `error` set.
  return NewStreamReactor(
      [this, context](const grpc::ByteBuffer& bytes, RespondBytes respond) {
        ScoreRequest request;
        absl::Status parsed = ParseScoreRequest(bytes, request);
        auto answer = [id = request.request_id(), respond = std::move(respond)](
                          absl::StatusOr<ScoreResponse> result) {
          ScoreResponse response;
          if (result.ok()) {
            response = std::move(*result);
          } else {
            response.set_request_id(id);
            grpc::Status status = ToGrpcStatus(result.status());
            response.mutable_error()->set_code(status.error_code());
            response.mutable_error()->set_message(status.error_message());
          }
          respond(ToByteBuffer(response));
        };
        if (!parsed.ok()) return answer(parsed);
        // SubmitScore calls `answer` iff it accepted the request.
        auto shared = std::make_shared<decltype(answer)>(std::move(answer));
        absl::Status submitted = SubmitScore(
            context, request, [shared](absl::StatusOr<ScoreResponse> result) {
              (*shared)(std::move(result));
            });
        if (!submitted.ok()) (*shared)(submitted);
      },
      max_in_flight_per_stream_, gate_->streams());
}

grpc::ServerUnaryReactor* ScoringServiceImpl::GetModelMetadata(
    grpc::CallbackServerContext* context,
    const fusion::v1::GetModelMetadataRequest* request,
    fusion::v1::ModelMetadata* response) {
  return gate_->Begin(context, [&](grpc::ServerUnaryReactor* reactor) {
    reactor->Finish(ToGrpcStatus(FillModelMetadata(*request, *response)));
  });
}

absl::Status ScoringServiceImpl::FillModelMetadata(
    const fusion::v1::GetModelMetadataRequest& request,
    fusion::v1::ModelMetadata& response) const {
  auto registry = state_->AdmittingRegistry();
  if (!registry.ok()) return registry.status();
  auto servable = (*registry)->Find(request.model(), request.model_version());
  if (!servable.ok()) return servable.status();
  auto status = (*registry)->GetModelStatus(request.model());
  if (!status.ok()) return status.status();
  response = BuildModelMetadata(**servable, *status);
  return absl::OkStatus();
}

}  // namespace fusion::api
