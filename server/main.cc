// fusion-server: flags and wiring only.
#include <cmath>
#include <csignal>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/log.h"
#include "server/runtime/blas_kernels.h"
#include "server/runtime/precision.h"
#include "server/server_app.h"

ABSL_FLAG(std::string, model_repository, "models",
          "Directory of model bundles: <repo>/<model>/<version>/config.pbtxt");
ABSL_FLAG(std::string, model, "fusion",
          "Default model, used when a request names none");
ABSL_FLAG(std::string, grpc_address, "0.0.0.0:50051", "gRPC listen address");
ABSL_FLAG(std::string, http_address, "0.0.0.0:9090",
          "HTTP address for /metrics, /healthz and /readyz");
ABSL_FLAG(std::string, device, "auto", "auto | cpu | cuda");
ABSL_FLAG(int, intra_op_threads, 0,
          "LibTorch intra-op threads per forward; overrides config (0: keep; "
          "unset there: usable CPUs / executors, 1 with executors unset)");
ABSL_FLAG(int, interop_threads, 0,
          "LibTorch inter-op threads (0: config, else 1)");
ABSL_FLAG(std::string, precision, "",
          "auto | fp32 | bf16: the forward's arithmetic; overrides config "
          "(empty: keep; auto: bf16 for batches large enough to gain, on a "
          "CPU that computes bf16 natively, once golden.jsonl passes in it)");
ABSL_FLAG(int, max_batch_size, 0, "Overrides config.pbtxt (0: keep)");
ABSL_FLAG(int64_t, max_queue_delay_us, -1,
          "Overrides config.pbtxt (-1: keep; 0 dispatches at once)");
ABSL_FLAG(int, max_queue_size, 0, "Overrides config.pbtxt (0: keep)");
ABSL_FLAG(int, instance_count, 0,
          "Executors (model instances) per model; overrides config (0: keep; "
          "unset there: one per usable CPU, up to 8, on a CPU; 1 on a GPU)");
ABSL_FLAG(double, merge_cost_tokens, -1,
          "A forward's fixed cost in token positions, for merging length "
          "buckets; overrides config (-1: keep; 0: never merge)");
ABSL_FLAG(std::string, pipelining, "",
          "auto | on | off: collate the next batch during the forward; "
          "overrides config (empty: keep; auto: on for a GPU only)");
ABSL_FLAG(absl::Duration, drain_delay, absl::ZeroDuration(),
          "After SIGTERM: time to keep serving while not ready, so load "
          "balancers stop routing here (e.g. 5s in Kubernetes)");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::Seconds(30),
          "After the drain delay: the most time to finish accepted requests");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(),
          "Close client connections after this age (0: never), so clients "
          "balancing over DNS see replicas added by a scale-up");
ABSL_FLAG(std::string, log_level, "info", "debug | info | warning | error");
ABSL_FLAG(bool, metrics, true,
          "Keep Prometheus metrics and serve /metrics (off: for measuring "
          "their overhead)");

// --help lists this file's flags (absl's default matches the binary name).
bool IsServerFlagFile(absl::string_view file) {
  return absl::EndsWith(file, "server/main.cc");
}

int main(int argc, char** argv) {
  fusion::runtime::RestartForBetterBlasKernels(argv);
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detection on: a lock-graph update on every lock, gRPC's own included
  // (about 1% of a saturated core here), a debugging aid production need not
  // pay for.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsServerFlagFile;
  usage.contains_helpshort_flags = IsServerFlagFile;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "Serves a text + tabular cross-attention model over gRPC.\n"
      "Usage: fusion-server [--model_repository=models] [--model=fusion] ...");
  absl::ParseCommandLine(argc, argv);

  auto level = fusion::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) {
    fusion::Log(fusion::LogLevel::kError, level.status().message());
    return EXIT_FAILURE;
  }
  fusion::SetLogLevel(*level);

  fusion::ServerAppOptions options;
  options.model_repository = absl::GetFlag(FLAGS_model_repository);
  options.default_model = absl::GetFlag(FLAGS_model);
  options.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  options.http_address = absl::GetFlag(FLAGS_http_address);
  options.device = absl::GetFlag(FLAGS_device);
  options.intra_op_threads = absl::GetFlag(FLAGS_intra_op_threads);
  options.interop_threads = absl::GetFlag(FLAGS_interop_threads);
  if (const std::string precision = absl::GetFlag(FLAGS_precision);
      !precision.empty()) {
    auto value = fusion::runtime::ParsePrecision(precision);
    if (!value.ok()) {
      fusion::Log(fusion::LogLevel::kError, "--", value.status().message());
      return EXIT_FAILURE;
    }
    options.precision = *value;
  }
  options.batching.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  options.batching.max_queue_delay_us = absl::GetFlag(FLAGS_max_queue_delay_us);
  options.batching.max_queue_size = absl::GetFlag(FLAGS_max_queue_size);
  options.batching.instance_count = absl::GetFlag(FLAGS_instance_count);
  options.batching.merge_cost_tokens = absl::GetFlag(FLAGS_merge_cost_tokens);
  if (const double cost = options.batching.merge_cost_tokens;
      cost != -1 && !(cost >= 0 && std::isfinite(cost))) {
    fusion::Log(fusion::LogLevel::kError,
                "--merge_cost_tokens must be finite and >= 0 (or -1: keep)");
    return EXIT_FAILURE;
  }
  if (const std::string pipelining = absl::GetFlag(FLAGS_pipelining);
      !pipelining.empty()) {
    fusion::v1::BatchingConfig::Pipelining value;
    if (!fusion::v1::BatchingConfig::Pipelining_Parse(
            "PIPELINING_" + absl::AsciiStrToUpper(pipelining), &value)) {
      fusion::Log(fusion::LogLevel::kError, "--pipelining must be auto, on "
                  "or off, not '", pipelining, "'");
      return EXIT_FAILURE;
    }
    options.batching.pipelining = value;
  }
  options.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  options.shutdown_timeout = absl::GetFlag(FLAGS_shutdown_timeout);
  options.metrics = absl::GetFlag(FLAGS_metrics);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);

  absl::Status status = fusion::RunServer(options);
  if (!status.ok()) {
    fusion::Log(fusion::LogLevel::kError, status.ToString());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
