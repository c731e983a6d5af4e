#include "server/metrics/http_endpoint.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fusion::metrics {
namespace {

// How long Start waits for the listen loop to be running.
constexpr int kListenWaitMs = 5000;

}  // namespace

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    HttpEndpointOptions options) {
  const size_t colon = options.address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(options.address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad HTTP address '", options.address, "' (host:port)"));
  }
  std::string host = options.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);

  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint());
  if (options.tls_setup) {
    endpoint->server_ = std::make_unique<httplib::SSLServer>(
        [&setup = options.tls_setup](SSL_CTX& ctx) { return setup(ctx); });
  } else {
    endpoint->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *endpoint->server_;
  if (!server.is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot set up TLS on HTTP address ", options.address));
  }
  // A response's header and body go out in separate writes: with Nagle on,
  // the body waited for the client's delayed ACK (40 ms per keep-alive
  // request, measured on v2 inference).
  server.set_tcp_nodelay(true);
  // httplib closes a keep-alive connection after 5 requests by default;
  // clients then pay a reconnect every 5 calls.
  server.set_keep_alive_max_count(10000);
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [reason = options.not_ready_reason,
                         detail = options.readiness_detail](
                            const httplib::Request&, httplib::Response& res) {
    const std::string why = reason ? reason() : "";
    std::string body =
        why.empty() ? "ready\n" : absl::StrCat("not ready: ", why, "\n");
    if (detail) body += detail();
    if (!why.empty()) res.status = 503;
    res.set_content(body, "text/plain");
  });
  if (options.metrics_text) {
    server.Get(
        "/metrics", [text = options.metrics_text](const httplib::Request&,
                                                  httplib::Response& res) {
          res.set_content(text(), "text/plain; version=0.0.4; charset=utf-8");
        });
  }
  if (options.add_routes) options.add_routes(server);
  // Debian's compiled cpp-httplib listens with a backlog of 5: 24 clients
  // connecting at once overflowed it (TcpExtListenOverflows) and some got
  // "connection reset" (test_v2_http under ASan). The listening socket is
  // caught here and, once bound, listened on again with the kernel's
  // backlog (Linux lets listen() raise it on a listening socket).
  auto listening = std::make_shared<int>(-1);
  server.set_socket_options([listening](socket_t sock) {
    httplib::default_socket_options(sock);
    *listening = sock;
  });
  if (!server.bind_to_port(host, port)) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind HTTP address ", options.address));
  }
  if (*listening >= 0) ::listen(*listening, SOMAXCONN);
  endpoint->thread_ = std::thread([&server] { server.listen_after_bind(); });
  // httplib's stop() does nothing until the listen loop runs: a start that
  // fails at once would otherwise leave the destructor joining a thread
  // blocked in accept() forever.
  for (int waited_ms = 0; !server.is_running() && waited_ms < kListenWaitMs;
       ++waited_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fusion::metrics
