// inference.GRPCInferenceService (the Open Inference Protocol over gRPC) on
// gRPC's callback API, over InferenceCore; served beside the native
// fusion.v1.ScoringService on the same port. ModelInfer and
// ModelStreamInfer take raw bytes and parse them here, as the native API
// does, so a malformed request gets INVALID_ARGUMENT saying so. A stream
// keeps at most `max_in_flight_per_stream` requests in the server, as
// ScoreStream does.
#ifndef FUSION_SERVER_API_V2_INFERENCE_SERVICE_H_
#define FUSION_SERVER_API_V2_INFERENCE_SERVICE_H_

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/api/call_gate.h"
#include "server/api/scoring_service.h"
#include "server/api/v2/inference_core.h"

namespace fusion::api::v2 {

using GRPCInferenceService = inference::GRPCInferenceService;
using InferenceServiceBase = GRPCInferenceService::WithCallbackMethod_ServerLive<
    GRPCInferenceService::WithCallbackMethod_ServerReady<
        GRPCInferenceService::WithCallbackMethod_ModelReady<
            GRPCInferenceService::WithCallbackMethod_ServerMetadata<
                GRPCInferenceService::WithCallbackMethod_ModelMetadata<
                    GRPCInferenceService::WithCallbackMethod_ModelConfig<
                        GRPCInferenceService::WithCallbackMethod_ModelStatistics<
                            GRPCInferenceService::
                                WithRawCallbackMethod_ModelInfer<
                                    GRPCInferenceService::
                                        WithRawCallbackMethod_ModelStreamInfer<
                                            GRPCInferenceService::
                                                Service>>>>>>>>>;

class InferenceServiceImpl final : public InferenceServiceBase {
 public:
  // `core` and `gate` must outlive the service; `gate` admits every unary
  // call and tracks the open streams (call_gate.h).
  // `max_in_flight_per_stream` >= 1.
  InferenceServiceImpl(const InferenceCore* core, CallGate* gate,
                       int max_in_flight_per_stream =
                           ScoringServiceImpl::kDefaultMaxInFlightPerStream)
      : core_(core),
        gate_(gate),
        max_in_flight_per_stream_(max_in_flight_per_stream) {}

  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* context,
      const inference::ServerLiveRequest* request,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* context,
      const inference::ServerReadyRequest* request,
      inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* context,
      const inference::ModelReadyRequest* request,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* context,
      const inference::ServerMetadataRequest* request,
      inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* context,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelConfig(
      grpc::CallbackServerContext* context,
      const inference::ModelConfigRequest* request,
      inference::ModelConfigResponse* response) override;
  grpc::ServerUnaryReactor* ModelStatistics(
      grpc::CallbackServerContext* context,
      const inference::ModelStatisticsRequest* request,
      inference::ModelStatisticsResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ModelStreamInfer(
      grpc::CallbackServerContext* context) override;

 private:
  // Answers a unary RPC from a StatusOr of its response, through the gate.
  template <typename Response>
  grpc::ServerUnaryReactor* Answer(
      grpc::CallbackServerContext* context,
      absl::FunctionRef<absl::StatusOr<Response>()> compute,
      Response* response);

  const InferenceCore* const core_;
  CallGate* const gate_;
  const int max_in_flight_per_stream_;
};

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_INFERENCE_SERVICE_H_
