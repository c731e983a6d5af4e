#include "server/server_app.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/protobuf_logging.h"
#include "server/api/scoring_service.h"
#include "server/common/log.h"
#include "server/metrics/http_endpoint.h"
#include "server/metrics/server_metrics.h"
#include "server/runtime/blas_kernels.h"
#include "server/runtime/precision.h"
#include "server/runtime/torch_model_runtime.h"
#include "server/serving/serving_state.h"

namespace fusion {
namespace {

constexpr char kServiceName[] = "fusion.v1.ScoringService";
constexpr std::chrono::milliseconds kFlushGrace{300};
// gRPC's Server::Shutdown answers CANCELLED to calls that reached the
// transport but no handler yet (grpc/grpc#41785), though their clients sent
// them in good time. So before it, calls are still admitted until none has
// started for kQuietPeriod: what clients sent before the signal is then
// taken. Bounded, for clients that never stop sending.
constexpr absl::Duration kQuietPeriod = absl::Milliseconds(50);
constexpr absl::Duration kMaxQuietWait = absl::Seconds(2);

absl::StatusOr<runtime::DevicePreference> ParseDevice(const std::string& name) {
  if (name == "auto") return runtime::DevicePreference::kAuto;
  if (name == "cpu") return runtime::DevicePreference::kCpu;
  if (name == "cuda") return runtime::DevicePreference::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("--device: unknown '", name, "' (auto|cpu|cuda)"));
}

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

void SetHealth(grpc::Server& server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService();
  health->SetServingStatus("", serving);
  health->SetServingStatus(kServiceName, serving);
}

// Returns once `calls_started` has not moved for kQuietPeriod, or after
// kMaxQuietWait (at most half of `shutdown_timeout`).
void WaitForArrivalsToStop(const std::function<uint64_t()>& calls_started,
                           absl::Duration shutdown_timeout) {
  const absl::Time give_up =
      absl::Now() + std::min(kMaxQuietWait, shutdown_timeout / 2);
  uint64_t seen = calls_started();
  while (absl::Now() < give_up) {
    absl::SleepFor(kQuietPeriod);
    const uint64_t now = calls_started();
    if (now == seen) return;
    seen = now;
  }
}

int64_t MaxMessageBytes(const serving::ModelRegistry& registry) {
  int64_t bytes = 0;
  registry.ForEach([&bytes](const serving::Servable& servable) {
    bytes = std::max(bytes, servable.config().max_message_bytes());
  });
  return bytes;
}

}  // namespace

absl::Status RunServer(const ServerAppOptions& options) {
  // Signals are taken synchronously by this thread only; every thread
  // started from here on inherits the mask.
  const sigset_t signals = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto device = ParseDevice(options.device);
  if (!device.ok()) return device.status();
  api::RouteProtobufLogs();

  serving::ServingState state;
  metrics::ServerMetrics metrics;
  metrics.AddScrapeHook([&state, &metrics] {
    if (serving::ModelRegistry* registry = state.registry()) {
      registry->ForEach([&metrics](const serving::Servable& servable) {
        const int levels = servable.config().batching().priority_levels();
        for (int priority = 0; priority < levels; ++priority) {
          metrics.SetQueueDepth(servable.config().name(), servable.version(),
                                priority, servable.queue_depth(priority));
        }
      });
    }
  });
  metrics::HttpEndpointOptions http_options;
  http_options.address = options.http_address;
  http_options.not_ready_reason = [&state] { return state.NotReadyReason(); };
  if (options.metrics) {
    http_options.metrics_text = [&metrics] { return metrics.Scrape(); };
  }
  auto http = metrics::HttpEndpoint::Start(http_options);
  if (!http.ok()) return http.status();
  Log(LogLevel::kInfo, "HTTP probes on ", options.http_address);

  serving::RegistryOptions registry_options;
  registry_options.repository = options.model_repository;
  registry_options.default_model = options.default_model;
  registry_options.overrides = options.batching;
  runtime::TorchRuntimeOptions runtime_options;
  runtime_options.device = *device;
  runtime_options.intra_op_threads = options.intra_op_threads;
  runtime_options.interop_threads = options.interop_threads;
  runtime_options.precision = options.precision;
  registry_options.runtime_factory =
      [runtime_options](const std::string& bundle_dir,
                        const fusion::v1::ModelConfig& config)
      -> absl::StatusOr<std::unique_ptr<runtime::ModelRuntime>> {
    auto created = runtime::TorchModelRuntime::Create(bundle_dir, config,
                                                      runtime_options);
    if (!created.ok()) return created.status();
    return std::unique_ptr<runtime::ModelRuntime>(std::move(*created));
  };
  if (options.metrics) {
    registry_options.observer_factory = [&metrics](const std::string& model,
                                                   const std::string& version) {
      return metrics.ForModel(model, version);
    };
  }
  registry_options.on_loaded = [&metrics](const serving::Servable& servable,
                                          absl::Duration load_time) {
    metrics.SetModelLoaded(servable.config().name(), servable.version(),
                           absl::ToDoubleSeconds(load_time));
  };
  auto registry = serving::ModelRegistry::Load(registry_options);
  if (!registry.ok()) return registry.status();
  const serving::Servable& default_servable =
      **(*registry)->Find(options.default_model, "");
  // The OpenBLAS kernels this process runs, for build_info and the log.
  const std::string blas_kernels =
      runtime::LoadedOpenBlasCore().value_or("none");
  const runtime::PrecisionPlan precision = default_servable.precision();
  metrics.SetBuildInfo({FUSION_VERSION, FUSION_GIT_SHA,
                        runtime::TorchVersion(), default_servable.device(),
                        blas_kernels, runtime::PrecisionName(precision)});

  api::ScoringServiceImpl scoring(&state, [&metrics](absl::StatusCode code) {
    metrics.RecordUnroutedRequest(code);
  });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(options.grpc_address,
                           grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&scoring);
  if (options.max_connection_age > absl::ZeroDuration()) {
    // GOAWAY after the age; calls in flight get the same again to finish.
    const int ms = static_cast<int>(
        absl::ToInt64Milliseconds(options.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, ms);
  }
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(MaxMessageBytes(**registry)));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on gRPC address ", options.grpc_address));
  }
  state.SetReady(registry->get());
  SetHealth(*server, true);
  Log(LogLevel::kInfo, "serving ", options.default_model, " via gRPC on ",
      options.grpc_address, " (torch ", runtime::TorchVersion(),
      ", OpenBLAS kernels: ", blas_kernels,
      ", precision: ", runtime::DescribePrecision(precision), ")");

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "signal ", signal_number, ": not ready; draining in ",
      absl::FormatDuration(options.drain_delay));
  state.StopAdvertising();
  SetHealth(*server, false);
  (*registry)->ForEach([&metrics](const serving::Servable& servable) {
    metrics.SetModelReady(servable.config().name(), servable.version(), false);
  });
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(options.drain_delay));

  const absl::Time start = absl::Now();
  WaitForArrivalsToStop([&scoring] { return scoring.calls_started(); },
                        options.shutdown_timeout);
  state.StartDraining();
  // Stops accepting RPCs and waits for the accepted ones, whose tasks the
  // executors are still computing; past the deadline, cancels the rest.
  server->Shutdown(absl::ToChronoTime(start + options.shutdown_timeout));
  (*registry)->DrainAll();
  Log(LogLevel::kInfo, "drained in ", absl::FormatDuration(absl::Now() - start));
  // Shutdown returns once the last response is handed to the transport, not
  // once it is on the wire: closing the sockets at once reset streams whose
  // final responses were still in flight (seen in tests). Let them flush.
  std::this_thread::sleep_for(kFlushGrace);
  return absl::OkStatus();
}

}  // namespace fusion
