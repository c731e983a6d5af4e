// The server's lifecycle: HTTP probes up first, models loaded and warmed up,
// gRPC started, then serve until SIGTERM/SIGINT and drain.
#ifndef FUSION_SERVER_SERVER_APP_H_
#define FUSION_SERVER_SERVER_APP_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/serving/model_registry.h"

namespace fusion {

struct ServerAppOptions {
  std::string model_repository = "models";
  std::string default_model = "fusion";
  std::string grpc_address = "0.0.0.0:50051";
  std::string http_address = "0.0.0.0:9090";
  std::string device = "auto";  // auto | cpu | cuda
  int intra_op_threads = 0;
  int interop_threads = 0;
  // Overrides each model's config.pbtxt runtime.precision when set.
  std::optional<fusion::v1::RuntimeConfig::Precision> precision;
  serving::BatchingOverrides batching;
  absl::Duration drain_delay = absl::ZeroDuration();
  absl::Duration shutdown_timeout = absl::Seconds(30);
  bool metrics = true;
  absl::Duration max_connection_age = absl::ZeroDuration();  // 0: never
};

// Blocks until a shutdown signal has been handled. OK after a clean drain;
// an error when start-up fails (bad flags, model load, ports).
// Must be called from the main thread before any other thread starts: it
// blocks SIGTERM/SIGINT in every thread and waits for them synchronously.
absl::Status RunServer(const ServerAppOptions& options);

}  // namespace fusion

#endif  // FUSION_SERVER_SERVER_APP_H_
