#include "server/api/v2/inference_service.h"

#include <utility>

#include "server/api/byte_buffer_codec.h"
#include "server/api/rpc_deadline.h"
#include "server/api/status_mapping.h"
#include "server/api/stream_reactor.h"

namespace fusion::api::v2 {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

absl::Status Parse(const grpc::ByteBuffer& bytes, ModelInferRequest& request) {
  if (!FromByteBuffer(bytes, request)) {
    return absl::InvalidArgumentError(
        "ModelInferRequest does not parse: malformed protobuf, or a string "
        "field that is not valid UTF-8");
  }
  if (request.parameters_size() == 0) return absl::OkStatus();
  return CheckMapWireTypes(bytes, *ModelInferRequest::descriptor());
}

}  // namespace

template <typename Response>
grpc::ServerUnaryReactor* InferenceServiceImpl::Answer(
    grpc::CallbackServerContext* context,
    absl::FunctionRef<absl::StatusOr<Response>()> compute, Response* response) {
  return gate_->Begin(context, [&](grpc::ServerUnaryReactor* reactor) {
    absl::StatusOr<Response> result = compute();
    if (result.ok()) *response = std::move(*result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerLive(
    grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  return Answer<inference::ServerLiveResponse>(
      context,
      [this] {
        inference::ServerLiveResponse live;
        live.set_live(core_->ServerLive());
        return live;
      },
      response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerReady(
    grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  return Answer<inference::ServerReadyResponse>(
      context,
      [this] {
        inference::ServerReadyResponse ready;
        ready.set_ready(core_->ServerReady());
        return ready;
      },
      response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelReady(
    grpc::CallbackServerContext* context,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  return Answer<inference::ModelReadyResponse>(
      context,
      [this, request] {
        inference::ModelReadyResponse ready;
        ready.set_ready(core_->ModelReady(request->name(), request->version()));
        return ready;
      },
      response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerMetadata(
    grpc::CallbackServerContext* context,
    const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  return Answer<inference::ServerMetadataResponse>(
      context, [this] { return core_->ServerMetadata(); }, response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelMetadata(
    grpc::CallbackServerContext* context,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  return Answer<inference::ModelMetadataResponse>(
      context,
      [this, request] {
        return core_->ModelMetadata(request->name(), request->version());
      },
      response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelConfig(
    grpc::CallbackServerContext* context,
    const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  return Answer<inference::ModelConfigResponse>(
      context,
      [this, request] {
        return core_->ModelConfig(request->name(), request->version());
      },
      response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelStatistics(
    grpc::CallbackServerContext* context,
    const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  return Answer<inference::ModelStatisticsResponse>(
      context,
      [this, request] {
        return core_->ModelStatistics(request->name(), request->version());
      },
      response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelInfer(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  return gate_->Begin(context, [&](grpc::ServerUnaryReactor* reactor) {
    if (!request_bytes->Valid()) return FinishNeverArrived(reactor);
    ModelInferRequest request;
    if (absl::Status parsed = Parse(*request_bytes, request); !parsed.ok()) {
      reactor->Finish(ToGrpcStatus(parsed));
      return;
    }
    core_->Infer(
        request, DeadlineOf(*context),
        [context] { return context->IsCancelled(); },
        [reactor, response_bytes](absl::StatusOr<ModelInferResponse> result) {
          if (result.ok()) *response_bytes = ToByteBuffer(*result);
          reactor->Finish(ToGrpcStatus(result.status()));
        });
  });
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
InferenceServiceImpl::ModelStreamInfer(grpc::CallbackServerContext* context) {
  // Triton's convention: a failed request answers with error_message (and
  // the request's id), and the stream goes on.
  return NewStreamReactor(
      [this, context](const grpc::ByteBuffer& bytes, RespondBytes respond) {
        ModelInferRequest request;
        const absl::Status parsed = Parse(bytes, request);
        auto answer = [id = request.id(), name = request.model_name(),
                       version = request.model_version(),
                       respond = std::move(respond)](
                          absl::StatusOr<ModelInferResponse> result) {
          inference::ModelStreamInferResponse response;
          if (result.ok()) {
            *response.mutable_infer_response() = std::move(*result);
          } else {
            response.set_error_message(std::string(result.status().message()));
            auto* echo = response.mutable_infer_response();
            echo->set_id(id);
            echo->set_model_name(name);
            echo->set_model_version(version);
          }
          respond(ToByteBuffer(response));
        };
        if (!parsed.ok()) return answer(parsed);
        core_->Infer(
            request, DeadlineOf(*context),
            [context] { return context->IsCancelled(); }, std::move(answer));
      },
      max_in_flight_per_stream_, gate_->streams());
}

}  // namespace fusion::api::v2
