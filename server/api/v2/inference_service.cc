#include "server/api/v2/inference_service.h"

#include <chrono>
#include <utility>

#include "server/api/byte_buffer_codec.h"
#include "server/api/status_mapping.h"
#include "server/api/stream_reactor.h"

namespace fusion::api::v2 {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

absl::Status Parse(const grpc::ByteBuffer& bytes, ModelInferRequest& request) {
  if (FromByteBuffer(bytes, request)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "ModelInferRequest does not parse: malformed protobuf, or a string "
      "field that is not valid UTF-8");
}

absl::Time Deadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  return deadline == std::chrono::system_clock::time_point::max()
             ? absl::InfiniteFuture()
             : absl::FromChrono(deadline);
}

// Answers a unary RPC from a StatusOr of its response message.
template <typename Response>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                 absl::StatusOr<Response> result,
                                 Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (result.ok()) *response = std::move(*result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerLive(
    grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  Started();
  response->set_live(core_->ServerLive());
  return Answer(context,
                absl::StatusOr<inference::ServerLiveResponse>(*response),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerReady(
    grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  Started();
  response->set_ready(core_->ServerReady());
  return Answer(context,
                absl::StatusOr<inference::ServerReadyResponse>(*response),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelReady(
    grpc::CallbackServerContext* context,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  Started();
  response->set_ready(core_->ModelReady(request->name(), request->version()));
  return Answer(context,
                absl::StatusOr<inference::ModelReadyResponse>(*response),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerMetadata(
    grpc::CallbackServerContext* context,
    const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  Started();
  return Answer(context,
                absl::StatusOr<inference::ServerMetadataResponse>(
                    core_->ServerMetadata()),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelMetadata(
    grpc::CallbackServerContext* context,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  Started();
  return Answer(context,
                core_->ModelMetadata(request->name(), request->version()),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelConfig(
    grpc::CallbackServerContext* context,
    const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  Started();
  return Answer(context,
                core_->ModelConfig(request->name(), request->version()),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelStatistics(
    grpc::CallbackServerContext* context,
    const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  Started();
  return Answer(context,
                core_->ModelStatistics(request->name(), request->version()),
                response);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelInfer(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  Started();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ModelInferRequest request;
  if (absl::Status parsed = Parse(*request_bytes, request); !parsed.ok()) {
    reactor->Finish(ToGrpcStatus(parsed));
    return reactor;
  }
  core_->Infer(
      request, Deadline(*context), [context] { return context->IsCancelled(); },
      [reactor, response_bytes](absl::StatusOr<ModelInferResponse> result) {
        if (result.ok()) *response_bytes = ToByteBuffer(*result);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
InferenceServiceImpl::ModelStreamInfer(grpc::CallbackServerContext* context) {
  Started();
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
            request, Deadline(*context),
            [context] { return context->IsCancelled(); }, std::move(answer));
      },
      kMaxInFlightPerStream);
}

}  // namespace fusion::api::v2
