// The server's lifecycle: HTTP probes up first, the process's thread plan,
// models loaded and warmed up, gRPC started, then serve (rescanning the
// repository if asked) until SIGTERM/SIGINT, and drain.
#ifndef FUSION_SERVER_SERVER_APP_H_
#define FUSION_SERVER_SERVER_APP_H_

#include <grpcpp/server.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fusion/v1/model_config.pb.h"
#include "server/api/call_gate.h"
#include "server/api/model_repository_service.h"
#include "server/api/scoring_service.h"
#include "server/api/v2/inference_core.h"
#include "server/api/v2/inference_service.h"
#include "server/metrics/http_endpoint.h"
#include "server/metrics/server_metrics.h"
#include "server/runtime/bundle_config.h"
#include "server/security/certificate_reloader.h"
#include "server/security/grpc_tls_credentials.h"
#include "server/security/request_limits.h"
#include "server/serving/model_registry.h"
#include "server/serving/repository_poller.h"
#include "server/serving/serving_state.h"

namespace fusion {

// Every process default is written here once; main.cc's flags take theirs
// from a default-constructed ServerAppOptions.
struct ServerAppOptions {
  std::string model_repository = "models";
  std::string default_model = "fusion";
  std::vector<std::string> models;  // empty: every model in the repository
  std::string grpc_address = "0.0.0.0:50051";
  std::string http_address = "0.0.0.0:9090";
  std::string admin_address;  // ModelRepositoryService; empty: not served
  // The v2 repository extension over HTTP; empty: not served.
  std::string admin_http_address;
  absl::Duration repository_poll_interval = absl::ZeroDuration();  // 0: off
  std::string device = "auto";  // auto | cpu | cuda
  // LibTorch threads, process-wide. Unset: the default model's config, else
  // planned from the usable CPUs (runtime::PlanThreads).
  std::optional<int> intra_op_threads;
  std::optional<int> interop_threads;
  // Overrides each model's config.pbtxt runtime.precision when set.
  std::optional<fusion::v1::RuntimeConfig::Precision> precision;
  runtime::BatchingOverrides batching;
  absl::Duration drain_delay = absl::ZeroDuration();
  absl::Duration shutdown_timeout = absl::Seconds(30);
  bool metrics = true;
  // The largest body the HTTP port takes (v2 inference); larger: 413.
  int64_t http_max_body_bytes = int64_t{16} << 20;
  // HTTP worker threads: a v2 infer holds one until answered, so this caps
  // the HTTP requests in flight.
  int http_threads = 32;
  absl::Duration max_connection_age = absl::ZeroDuration();  // 0: never
  // The attention explorer page (GET /, /ui/*) on the HTTP port.
  bool ui = true;

  // TLS on the gRPC ports (scoring and admin): PEM files, cert and key
  // together; empty: plaintext. A client CA turns on mutual TLS.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // The same for the HTTP port (probes, /metrics, v2 HTTP, UI).
  std::string http_tls_cert;
  std::string http_tls_key;
  std::string http_tls_client_ca;

  // Limits that protect the process (docs/security.md).
  // gRPC's largest request; unset: the largest max_message_bytes among the
  // models loaded at start.
  std::optional<int64_t> max_message_bytes;
  int64_t max_text_bytes = security::kDefaultMaxTextBytes;
  // HTTP/2 streams (calls) one client connection may have open at once;
  // the client queues calls past it.
  int max_concurrent_streams = 1024;
  // Requests of one ScoreStream / ModelStreamInfer in the server at once
  // (queued, computing, or answered but not written); past it the server
  // stops reading that stream until some are written.
  int max_in_flight_per_stream =
      api::ScoringServiceImpl::kDefaultMaxInFlightPerStream;
};

class ServerApp {
 public:
  explicit ServerApp(ServerAppOptions options);
  ~ServerApp();

  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // Blocks until a shutdown signal has been handled. OK after a clean drain;
  // an error when start-up fails (bad flags, unusable TLS files, model
  // load, ports). Must be called from the main thread before any other
  // thread starts: it blocks SIGTERM/SIGINT/SIGHUP in every thread and waits
  // for them synchronously. SIGHUP re-reads the TLS files (ReloadTls).
  absl::Status Run();

 private:
  absl::Status Start();
  absl::Status StartHttp();
  absl::Status LoadModels();
  absl::Status StartGrpc();
  absl::Status StartRepositoryChanges();
  // Re-reads every TLS file set now and logs what each holds, or why it
  // cannot be used (the certificate in force then stays).
  void ReloadTls();
  void Drain();

  const ServerAppOptions options_;
  // TLS certificates, gRPC's and the HTTP port's: null when off. First, so
  // they outlive the servers that call back into them at each handshake.
  std::unique_ptr<security::CertificateReloader> grpc_tls_files_;
  std::unique_ptr<security::GrpcTlsCredentials> grpc_tls_;
  std::unique_ptr<security::CertificateReloader> http_tls_files_;
  // Members in lifetime order: each may be used by those after it, and
  // members are destroyed in reverse (the destructor stops the HTTP
  // endpoint first: its scrapes read the registry).
  serving::ServingState state_;
  metrics::ServerMetrics metrics_;
  // The v2 protocol's core serves HTTP routes from the start (answering
  // UNAVAILABLE while models load), so it comes before the endpoint.
  std::unique_ptr<api::v2::InferenceCore> v2_core_;
  std::unique_ptr<metrics::HttpEndpoint> http_;
  std::unique_ptr<serving::ModelRegistry> registry_;
  std::unique_ptr<serving::RepositoryPoller> poller_;
  std::unique_ptr<metrics::HttpEndpoint> admin_http_;
  // Admits the services' unary calls; outlives the server (call_gate.h).
  api::CallGate gate_;
  std::unique_ptr<api::ScoringServiceImpl> scoring_;
  std::unique_ptr<api::v2::InferenceServiceImpl> inference_;
  std::unique_ptr<api::ModelRepositoryServiceImpl> admin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> admin_server_;
};

}  // namespace fusion

#endif  // FUSION_SERVER_SERVER_APP_H_
