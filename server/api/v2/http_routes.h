// The Open Inference Protocol over HTTP/JSON (KServe v2 REST, with Triton's
// binary tensor data extension), on the server's HTTP port:
//   GET  /v2, /v2/health/live, /v2/health/ready
//   GET  /v2/models/{name}[/versions/{v}], .../ready, .../config, .../stats
//   POST /v2/models/{name}[/versions/{v}]/infer
// Each route translates to InferenceCore and back (http_json.h). Errors are
// {"error": "..."} with 400 (bad request), 404 (unknown model or version),
// 413 (body over max_body_bytes), 429 (queue full), 503 (not ready,
// draining), 504 (deadline).
#ifndef FUSION_SERVER_API_V2_HTTP_ROUTES_H_
#define FUSION_SERVER_API_V2_HTTP_ROUTES_H_

#include <cstdint>

#include "server/api/v2/inference_core.h"

namespace httplib {
class Server;
}

namespace fusion::api::v2 {

struct HttpRoutesOptions {
  int64_t max_body_bytes = int64_t{16} << 20;
};

// `core` must outlive `server`'s serving.
void AddV2Routes(httplib::Server& server, const InferenceCore& core,
                 const HttpRoutesOptions& options = {});

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_HTTP_ROUTES_H_
