// The attention explorer's JSON API (routes in ui_routes.h). It gives the
// page what the v2 API does not: the native metadata (feature descriptions,
// defaults, ranges), golden examples, and the native ScoreResponse (token
// strings, attention with its shapes, timing). Messages are the native
// API's (proto/fusion/v1/scoring.proto) in proto3's JSON mapping, field
// names as in the .proto.
//   Models()    200 {"default_model": "...", "models": [ModelMetadata, ...]}:
//               one entry per READY version, latest version first per model.
//   Examples()  200 {"examples": [{"request_id", "text", "features"}, ...]}:
//               the first kMaxExamples lines of the version's golden.jsonl
//               ([] when it has none); NOT_FOUND for an unknown version.
//   Score(body) body: a ScoreRequest as JSON, e.g. {"model": "fusion",
//               "text": "...", "features": {"amount": 950},
//               "attention": "ATTENTION_PER_HEAD"}; 200 a ScoreResponse.
// Errors: {"code": "INVALID_ARGUMENT", "message": "..."}, the native API's
// gRPC status name and message, with the HTTP status v2 uses for that code
// (400, 404, 429, 503, 504, ...). A body that is not a ScoreRequest is
// INVALID_ARGUMENT.
// Thread-safety: every method may be called concurrently.
#ifndef FUSION_SERVER_API_UI_UI_API_H_
#define FUSION_SERVER_API_UI_UI_API_H_

#include <string>

#include "server/api/scoring_service.h"
#include "server/serving/serving_state.h"

namespace fusion::api::ui {

struct ApiReply {
  int http_status = 200;
  std::string body;  // JSON
};

class UiApi {
 public:
  static constexpr int kMaxExamples = 12;

  // `state` must outlive the API; `on_unrouted` may be empty.
  UiApi(const serving::ServingState* state, std::string model_repository,
        UnroutedFn on_unrouted);

  ApiReply Models() const;
  // `model` empty: the default model; `version` empty: its latest.
  ApiReply Examples(const std::string& model, const std::string& version) const;
  // Blocks until the request is answered (HTTP has no deadline; the
  // model's default_timeout_us applies).
  ApiReply Score(const std::string& body) const;

 private:
  const serving::ServingState* const state_;
  const std::string model_repository_;
  const UnroutedFn on_unrouted_;
};

}  // namespace fusion::api::ui

#endif  // FUSION_SERVER_API_UI_UI_API_H_
