// The HTTP side port: GET /healthz (alive), GET /readyz (ready to serve),
// GET /metrics (Prometheus text format, when a source is given); plain HTTP,
// or HTTPS only when a TLS setup is given.
//
// Served by cpp-httplib on its own threads (prometheus-cpp's Exposer cannot
// start next to LibTorch here; see DESIGN.md).
#ifndef FUSION_SERVER_METRICS_HTTP_ENDPOINT_H_
#define FUSION_SERVER_METRICS_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}
struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace fusion::metrics {

struct HttpEndpointOptions {
  std::string address = "0.0.0.0:9090";  // host:port
  // "" when ready, else the one-line reason /readyz reports with its 503.
  std::function<std::string()> not_ready_reason;
  // Lines appended to /readyz's answer, ready or not (e.g. each model
  // version's state); optional.
  std::function<std::string()> readiness_detail;
  // Prometheus exposition text; /metrics answers 404 when empty.
  std::function<std::string()> metrics_text;
  // Registers more routes (e.g. the v2 inference API) before serving.
  std::function<void(httplib::Server&)> add_routes;
  // When set, the port speaks HTTPS only: called once with the port's
  // OpenSSL context to set its certificate and policy (false: fail).
  std::function<bool(ssl_ctx_st&)> tls_setup;
};

class HttpEndpoint {
 public:
  // Binds and starts serving. INVALID_ARGUMENT for a malformed address or a
  // refused TLS setup, UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(
      HttpEndpointOptions options);
  ~HttpEndpoint();  // stops and joins

 private:
  HttpEndpoint() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace fusion::metrics

#endif  // FUSION_SERVER_METRICS_HTTP_ENDPOINT_H_
