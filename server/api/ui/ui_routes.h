// The attention explorer: a page on the HTTP port (GET /, /ui/*) to score a
// request and see its token <-> feature attention, plus the small JSON API
// it reads (ui_api.h). The page's HTML, CSS and JavaScript (assets/) are
// compiled into the binary (embedded_assets.h), so the server stays one
// file and the page needs nothing from outside: every asset is sent with a
// strict Content-Security-Policy (kContentSecurityPolicy).
//   GET  /                         the page (also /index.html)
//   GET  /ui/app.css, /ui/app.js   its assets
//   GET  /ui/api/models            ui_api.h
//   GET  /ui/api/examples?model=&version=
//   POST /ui/api/score
// Same origin as the v2 API and /metrics, which the page also reads.
#ifndef FUSION_SERVER_API_UI_UI_ROUTES_H_
#define FUSION_SERVER_API_UI_UI_ROUTES_H_

#include <string>

#include "server/api/scoring_service.h"
#include "server/serving/serving_state.h"

namespace httplib {
class Server;
}

namespace fusion::api::ui {

// No inline script or style, nothing from another origin, no framing.
inline constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

struct UiOptions {
  // Must outlive the server's serving.
  const serving::ServingState* state = nullptr;
  // Where each version's bundle (and its golden.jsonl) lives.
  std::string model_repository;
  // Counts scoring requests that reach no model; may be empty.
  UnroutedFn on_unrouted;
};

// Registers the page, its assets and its API. Call before the server
// listens.
void AddUiRoutes(httplib::Server& server, UiOptions options);

}  // namespace fusion::api::ui

#endif  // FUSION_SERVER_API_UI_UI_ROUTES_H_
