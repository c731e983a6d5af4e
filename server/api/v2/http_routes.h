// The Open Inference Protocol over HTTP/JSON (KServe v2 REST, with Triton's
// binary tensor data extension), on the server's HTTP port. Each route
// translates to InferenceCore and back (http_json.h has the JSON formats):
//   GET  /v2                      server metadata
//   GET  /v2/health/live          200, or 503 when not live
//   GET  /v2/health/ready         200, or 503 when not ready (KServe asks
//                                 for a non-200; Triton sends 400)
//   GET  /v2/models/{name}[/versions/{v}]         model metadata
//   GET  /v2/models/{name}[/versions/{v}]/ready   200 {"name","ready":true}
//                                 when ready; else {"error"} with 404 for an
//                                 unknown model or version, 503 while the
//                                 server loads or drains, 400 for one not
//                                 ready (Triton's codes; clients only look
//                                 at the status)
//   GET  /v2/models/{name}[/versions/{v}]/config  the ModelConfig itself
//   GET  /v2/models/stats, /v2/models/{name}[/versions/{v}]/stats
//   POST /v2/models/{name}[/versions/{v}]/infer
// "stats" is not a model name under /v2/models (as in Triton).
// Infer: the body is JSON, or JSON then binary tensor data when the header
// Inference-Header-Content-Length gives the JSON's length; the answer is
// application/json, or application/octet-stream with that header when an
// output is sent as binary. HTTP brings no deadline (the request's
// "timeout" parameter is the only one) and httplib 0.11 cannot tell a
// handler that its client left, so an infer call runs to its end; each one
// holds an httplib worker thread while it waits.
// Errors are {"error": "..."}: the core's status mapped by
// HttpStatusFromCode (400 bad request, 404 unknown model or version, 429
// queue full, 499 cancelled, 503 not ready or draining, 504 deadline, 500
// internal), 413 for a body over max_body_bytes (httplib skips a
// Content-Length over it unread; a chunked or compressed body is read to
// its end and dropped once over it: memory stays bounded and the
// connection usable), 404 for an unknown /v2 path, and 500 for an
// exception in a handler.
// AddV2Routes also sets the server's payload limit and error handler (the
// latter only fills in empty error bodies under /v2) and, when asked, its
// worker thread count.
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
  // httplib's worker threads (each serves one connection at a time, and an
  // infer call blocks its thread); 0 keeps httplib's default,
  // max(8, cores - 1). Applies to the whole server, before it listens.
  int worker_threads = 0;
};

// `core` must outlive `server`'s serving. Call before the server listens.
void AddV2Routes(httplib::Server& server, const InferenceCore& core,
                 const HttpRoutesOptions& options = {});

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_HTTP_ROUTES_H_
