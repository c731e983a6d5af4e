// The Open Inference Protocol (KServe v2, with Triton's extensions) over
// fusionserve's batcher, independent of the transport: the gRPC service
// (inference_service.h) and the HTTP/JSON routes (http_routes.h) both
// translate to inference::ModelInferRequest and back, and call this.
//
// Tensors of ModelInfer (ModelMetadata lists them):
//   inputs   TEXT BYTES [B] or [B,1], or INPUT_IDS INT64|INT32 [B,L] with an
//            optional ATTENTION_MASK of the same type and shape (a row's ids
//            are those where the mask is non-zero; without it, all);
//            FEATURES FP32 [B,F], F in model order.
//   outputs  PROBABILITIES FP32 [B,C], SCORE FP32 [B] (the default pair);
//            TEXT_TO_FEATURES_ATTENTION FP32 [B,L,F] and
//            FEATURES_TO_TEXT_ATTENTION FP32 [B,F,L] (mean over heads; with
//            the output parameter attention="per_head": [B,H,L,F] and
//            [B,H,F,L]), zero-padded to the longest row, with TOKEN_COUNT
//            INT32 [B] (each row's true L); only when named in `outputs`.
// A request of B rows becomes B tasks in the same queues as native
// requests, and is answered once all B are computed. Request parameters:
// "priority" (0 = default level; Triton's 1..N map to levels 0..N-1),
// "timeout" (µs, shortens the deadline); unknown parameters are ignored.
// Errors use the native API's status mapping; INVALID_ARGUMENT messages
// name the tensor and, for a bad row, the row.
// Thread-safety: all methods may be called concurrently.
#ifndef FUSION_SERVER_API_V2_INFERENCE_CORE_H_
#define FUSION_SERVER_API_V2_INFERENCE_CORE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "inference/grpc_service.pb.h"
#include "server/serving/serving_state.h"

namespace fusion::api::v2 {

class InferenceCore {
 public:
  // Counts requests that reach no model (unknown model, not admitting).
  using UnroutedFn = std::function<void(absl::StatusCode)>;
  using InferDone =
      std::function<void(absl::StatusOr<inference::ModelInferResponse>)>;

  // `state` must outlive the core; `on_unrouted` may be empty;
  // `server_version` is what ServerMetadata reports.
  explicit InferenceCore(const serving::ServingState* state,
                         UnroutedFn on_unrouted = nullptr,
                         std::string server_version = "");

  // Validates `request` and queues its rows. `done` is called exactly once:
  // at once (on this thread) with an error when the request is refused, else
  // from an executor thread once every row is computed (or the first row
  // fails). The response holds raw_output_contents iff the request used
  // raw_input_contents. `deadline`: the transport's (InfiniteFuture() for
  // none); `cancelled` is polled while rows wait.
  void Infer(const inference::ModelInferRequest& request, absl::Time deadline,
             std::function<bool()> cancelled, InferDone done) const;

  bool ServerLive() const { return true; }
  // Loaded, warmed up, and not shutting down.
  bool ServerReady() const;
  // False for an unknown, loading, failed or unloading model or version,
  // and while the server loads or drains.
  bool ModelReady(const std::string& name, const std::string& version) const;
  inference::ServerMetadataResponse ServerMetadata() const;
  // NOT_FOUND for an unknown model or version; UNAVAILABLE while loading
  // or draining.
  absl::StatusOr<inference::ModelMetadataResponse> ModelMetadata(
      const std::string& name, const std::string& version) const;
  absl::StatusOr<inference::ModelConfigResponse> ModelConfig(
      const std::string& name, const std::string& version) const;
  // `name` empty: every model; `version` empty: every loaded version.
  absl::StatusOr<inference::ModelStatisticsResponse> ModelStatistics(
      const std::string& name, const std::string& version) const;

 private:
  absl::Status Unrouted(absl::Status status) const;

  const serving::ServingState* const state_;
  const UnroutedFn on_unrouted_;
  const std::string server_version_;
};

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_INFERENCE_CORE_H_
