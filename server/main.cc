// fusion-server: flags and wiring only.
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/log.h"
#include "server/runtime/blas_kernels.h"
#include "server/runtime/precision.h"
#include "server/server_app.h"

// Defaults come from ServerAppOptions, where each is written once.
const fusion::ServerAppOptions kDefaults;

ABSL_FLAG(std::string, model_repository, kDefaults.model_repository,
          "Directory of model bundles: <repo>/<model>/<version>/config.pbtxt");
ABSL_FLAG(std::string, model, kDefaults.default_model,
          "Default model, used when a request names none; always loaded");
ABSL_FLAG(std::vector<std::string>, models, {},
          "Models to serve, comma-separated (empty: every model in the "
          "repository, now and later)");
ABSL_FLAG(absl::Duration, repository_poll_interval,
          kDefaults.repository_poll_interval,
          "Rescan the repository this often and load or unload versions as "
          "their version policy says (0: never)");
ABSL_FLAG(std::string, admin_address, kDefaults.admin_address,
          "Serve fusion.v1.ModelRepositoryService (list, load, unload "
          "models) on this address (empty: not at all)");
ABSL_FLAG(std::string, admin_http_address, kDefaults.admin_http_address,
          "Serve the v2 model repository extension over HTTP "
          "(/v2/repository/index, /v2/repository/models/{name}/load|unload) "
          "on this address (empty: not at all)");
ABSL_FLAG(std::string, grpc_address, kDefaults.grpc_address,
          "gRPC listen address");
ABSL_FLAG(std::string, http_address, kDefaults.http_address,
          "HTTP address for /metrics, /healthz and /readyz");
ABSL_FLAG(std::string, device, kDefaults.device, "auto | cpu | cuda");
ABSL_FLAG(std::optional<int>, intra_op_threads, std::nullopt,
          "LibTorch intra-op threads per forward, for the whole process "
          "(unset: the default model's config, else planned from the usable "
          "CPUs: 1 up to 8 CPUs with instance_count unset, ceil(CPUs / 8) "
          "past 8; CPUs / instance_count when that is set; all on a GPU)");
ABSL_FLAG(std::optional<int>, interop_threads, std::nullopt,
          "LibTorch inter-op threads (unset: the default model's config, "
          "else 1)");
ABSL_FLAG(std::string, precision, "",
          "auto | fp32 | bf16: the forward's arithmetic; overrides config "
          "(empty: keep; auto: bf16 for batches large enough to gain, on a "
          "CPU that computes bf16 natively, once golden.jsonl passes in it)");
ABSL_FLAG(std::optional<int>, max_batch_size, std::nullopt,
          "Overrides every model's config.pbtxt (unset: keep)");
ABSL_FLAG(std::optional<int64_t>, max_queue_delay_us, std::nullopt,
          "Overrides config.pbtxt (unset: keep; 0 dispatches at once)");
ABSL_FLAG(std::optional<int>, max_queue_size, std::nullopt,
          "Overrides config.pbtxt (unset: keep)");
ABSL_FLAG(std::optional<int64_t>, max_queue_wait_us, std::nullopt,
          "Overrides config.pbtxt: refuse a request when the queued work "
          "would take longer than this to compute (unset: keep; unset "
          "there or 0: no bound)");
ABSL_FLAG(std::optional<int>, instance_count, std::nullopt,
          "Executors (model instances) per model; overrides config (unset: "
          "keep; unset there: 1 on a GPU, and on a CPU the usable CPUs "
          "divided by the intra-op threads, at most 8)");
ABSL_FLAG(std::optional<double>, merge_cost_tokens, std::nullopt,
          "A forward's fixed cost in token positions, for merging length "
          "buckets; overrides config (unset: keep; 0: never merge)");
ABSL_FLAG(std::vector<std::string>, bucket_max_batch_sizes, {},
          "The largest batch per length bucket: one per bucket (N,N,...), "
          "off (every bucket up to max_batch_size) or measure (the "
          "default: config.pbtxt's, measured on the device at load where "
          "it has none)");
ABSL_FLAG(std::string, pipelining, "",
          "auto | on | off: collate the next batch during the forward; "
          "overrides config (empty: keep; auto: on for a GPU only)");
ABSL_FLAG(int64_t, http_max_body_bytes, kDefaults.http_max_body_bytes,
          "The largest request body the HTTP port takes (v2 inference); a "
          "larger one gets 413");
ABSL_FLAG(int, http_threads, kDefaults.http_threads,
          "HTTP worker threads; a v2 infer over HTTP holds one until it is "
          "answered, so this caps the HTTP requests in flight");
ABSL_FLAG(absl::Duration, drain_delay, kDefaults.drain_delay,
          "After SIGTERM: time to keep serving while not ready, so load "
          "balancers stop routing here (e.g. 5s in Kubernetes)");
ABSL_FLAG(absl::Duration, shutdown_timeout, kDefaults.shutdown_timeout,
          "After the drain delay: the most time to finish accepted requests");
ABSL_FLAG(absl::Duration, max_connection_age, kDefaults.max_connection_age,
          "Close client connections after this age (0: never), so clients "
          "balancing over DNS see replicas added by a scale-up");
ABSL_FLAG(bool, ui, kDefaults.ui,
          "Serve the attention explorer page (GET /, /ui/*) on the HTTP "
          "port");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain (leaf first) for TLS on the gRPC ports "
          "(scoring and admin); with --tls_key. Re-read when the file "
          "changes (next connection) and on SIGHUP. Empty: plaintext");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key (unencrypted) of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: with it, gRPC clients must present a certificate "
          "signed by one of these CAs (mutual TLS), else the handshake fails");
ABSL_FLAG(std::string, http_tls_cert, "",
          "PEM certificate chain for HTTPS on --http_address (probes, "
          "/metrics, v2 HTTP, UI); with --http_tls_key. Empty: plain HTTP");
ABSL_FLAG(std::string, http_tls_key, "",
          "PEM private key (unencrypted) of --http_tls_cert");
ABSL_FLAG(std::string, http_tls_client_ca, "",
          "PEM CA bundle: HTTPS clients must present a certificate signed by "
          "it (Kubernetes probes cannot: see docs/security.md)");
ABSL_FLAG(std::optional<int64_t>, max_message_bytes, std::nullopt,
          "Largest gRPC request in bytes; a larger one gets "
          "RESOURCE_EXHAUSTED (unset: the largest max_message_bytes among "
          "the models loaded at start, 4 MiB by default)");
ABSL_FLAG(int64_t, max_text_bytes, kDefaults.max_text_bytes,
          "Largest request text in bytes; a longer one gets "
          "INVALID_ARGUMENT (HTTP 400) before it is tokenized");
ABSL_FLAG(int, max_concurrent_streams, kDefaults.max_concurrent_streams,
          "Calls one gRPC connection may have open at once (HTTP/2 "
          "MAX_CONCURRENT_STREAMS); clients queue calls past it");
ABSL_FLAG(int, max_in_flight_per_stream, kDefaults.max_in_flight_per_stream,
          "Requests of one ScoreStream or ModelStreamInfer stream in the "
          "server at once (queued, computing, or answered but not yet "
          "written); past it the server stops reading that stream");
ABSL_FLAG(std::string, log_level, "info", "debug | info | warning | error");
ABSL_FLAG(bool, metrics, kDefaults.metrics,
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
  options.models = absl::GetFlag(FLAGS_models);
  options.repository_poll_interval =
      absl::GetFlag(FLAGS_repository_poll_interval);
  options.admin_address = absl::GetFlag(FLAGS_admin_address);
  options.admin_http_address = absl::GetFlag(FLAGS_admin_http_address);
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
  options.batching.max_queue_wait_us = absl::GetFlag(FLAGS_max_queue_wait_us);
  options.batching.instance_count = absl::GetFlag(FLAGS_instance_count);
  options.batching.merge_cost_tokens = absl::GetFlag(FLAGS_merge_cost_tokens);
  if (const auto sizes = absl::GetFlag(FLAGS_bucket_max_batch_sizes);
      !sizes.empty()) {
    std::vector<int> parsed;
    const bool off = sizes.size() == 1 && sizes[0] == "off";
    const bool measure = sizes.size() == 1 && sizes[0] == "measure";
    for (const std::string& size :
         off || measure ? std::vector<std::string>{} : sizes) {
      int value = 0;
      if (!absl::SimpleAtoi(size, &value) || value < 1) {
        fusion::Log(
            fusion::LogLevel::kError,
            "--bucket_max_batch_sizes must be off, measure or sizes >= 1, "
            "not '",
            size, "'");
        return EXIT_FAILURE;
      }
      parsed.push_back(value);
    }
    if (!measure) options.batching.bucket_max_batch_sizes = std::move(parsed);
  }
  if (const std::string pipelining = absl::GetFlag(FLAGS_pipelining);
      !pipelining.empty()) {
    fusion::v1::BatchingConfig::Pipelining value;
    if (!fusion::v1::BatchingConfig::Pipelining_Parse(
            "PIPELINING_" + absl::AsciiStrToUpper(pipelining), &value)) {
      fusion::Log(fusion::LogLevel::kError,
                  "--pipelining must be auto, on "
                  "or off, not '",
                  pipelining, "'");
      return EXIT_FAILURE;
    }
    options.batching.pipelining = value;
  }
  options.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  options.shutdown_timeout = absl::GetFlag(FLAGS_shutdown_timeout);
  options.metrics = absl::GetFlag(FLAGS_metrics);
  options.http_max_body_bytes = absl::GetFlag(FLAGS_http_max_body_bytes);
  options.http_threads = absl::GetFlag(FLAGS_http_threads);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.ui = absl::GetFlag(FLAGS_ui);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.http_tls_cert = absl::GetFlag(FLAGS_http_tls_cert);
  options.http_tls_key = absl::GetFlag(FLAGS_http_tls_key);
  options.http_tls_client_ca = absl::GetFlag(FLAGS_http_tls_client_ca);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_text_bytes = absl::GetFlag(FLAGS_max_text_bytes);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_in_flight_per_stream =
      absl::GetFlag(FLAGS_max_in_flight_per_stream);

  absl::Status status = fusion::ServerApp(std::move(options)).Run();
  if (!status.ok()) {
    fusion::Log(fusion::LogLevel::kError, status.ToString());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
