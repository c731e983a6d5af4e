// fusion.v1.ScoringService on gRPC's callback API.
//
// RPC threads only validate, tokenize and enqueue; executor threads finish
// the RPCs when their batch is computed, so no thread blocks per request.
// ScoreStream keeps at most `max_in_flight_per_stream` requests of one stream
// in the server (computing, queued, or answered but not yet written) and
// stops reading until some complete (flow control).
//
// Score and ScoreStream take their messages as raw bytes and parse them
// here: gRPC's own parsing answers a request that does not parse (e.g. a
// `text` that is not valid UTF-8, which proto3 forbids) with UNIMPLEMENTED;
// we answer INVALID_ARGUMENT and say why.
#ifndef FUSION_SERVER_API_SCORING_SERVICE_H_
#define FUSION_SERVER_API_SCORING_SERVICE_H_

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fusion/v1/scoring.grpc.pb.h"
#include "server/api/call_gate.h"
#include "server/serving/serving_state.h"

namespace fusion::api {

// Counts requests that reach no model (unparsable, unknown model, not
// admitting).
using UnroutedFn = std::function<void(absl::StatusCode)>;
using RespondFn =
    std::function<void(absl::StatusOr<fusion::v1::ScoreResponse>)>;

// The native scoring path, free of any transport (the gRPC service below
// and the HTTP attention explorer, server/api/ui/, both use it). Validates
// `request` and queues it. An error means the request was refused before
// queuing (unknown model, invalid input, not admitting) and `respond` is
// never called; on OK `respond` is called exactly once, from an executor
// thread, or at once when the queue refuses the task. `deadline`: the
// caller's, or InfiniteFuture() for none (the model's default_timeout_us
// then applies); `cancelled` is polled while the task waits. `on_unrouted`
// may be empty.
absl::Status SubmitScoreRequest(const serving::ServingState& state,
                                const fusion::v1::ScoreRequest& request,
                                absl::Time deadline,
                                std::function<bool()> cancelled,
                                RespondFn respond,
                                const UnroutedFn& on_unrouted);

using ScoringServiceBase =
    fusion::v1::ScoringService::WithRawCallbackMethod_Score<
        fusion::v1::ScoringService::WithRawCallbackMethod_ScoreStream<
            fusion::v1::ScoringService::WithCallbackMethod_GetModelMetadata<
                fusion::v1::ScoringService::Service>>>;

class ScoringServiceImpl final : public ScoringServiceBase {
 public:
  // --max_in_flight_per_stream's default.
  static constexpr int kDefaultMaxInFlightPerStream = 512;

  using UnroutedFn = api::UnroutedFn;

  // `state` and `gate` must outlive the service; `gate` admits every unary
  // call and tracks the open streams (call_gate.h). `on_unrouted` may be
  // empty. `max_in_flight_per_stream` >= 1.
  ScoringServiceImpl(
      const serving::ServingState* state, CallGate* gate,
      UnroutedFn on_unrouted = nullptr,
      int max_in_flight_per_stream = kDefaultMaxInFlightPerStream)
      : state_(state),
        gate_(gate),
        on_unrouted_(std::move(on_unrouted)),
        max_in_flight_per_stream_(max_in_flight_per_stream) {}

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ScoreStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetModelMetadata(
      grpc::CallbackServerContext* context,
      const fusion::v1::GetModelMetadataRequest* request,
      fusion::v1::ModelMetadata* response) override;

  using RespondFn = api::RespondFn;
  // SubmitScoreRequest with the RPC's deadline and cancellation.
  absl::Status SubmitScore(grpc::CallbackServerContext* context,
                           const fusion::v1::ScoreRequest& request,
                           RespondFn respond);

 private:
  absl::Status Unrouted(absl::Status status) const;
  absl::Status FillModelMetadata(
      const fusion::v1::GetModelMetadataRequest& request,
      fusion::v1::ModelMetadata& response) const;

  const serving::ServingState* const state_;
  CallGate* const gate_;
  const UnroutedFn on_unrouted_;
  const int max_in_flight_per_stream_;
};

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_SCORING_SERVICE_H_
