#include "server/server_app.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/protobuf_logging.h"
#include "server/api/ui/ui_routes.h"
#include "server/api/v2/http_routes.h"
#include "server/api/v2/repository_routes.h"
#include "server/common/log.h"
#include "server/runtime/blas_kernels.h"
#include "server/runtime/cpu_budget.h"
#include "server/runtime/precision.h"
#include "server/runtime/torch_model_runtime.h"
#include "server/security/https_context.h"
#include "server/security/tls_material.h"
#include "server/serving/repository_scan.h"
#include "server/serving/servable_loader.h"

namespace fusion {
namespace {

constexpr char kServiceName[] = "fusion.v1.ScoringService";
constexpr std::chrono::milliseconds kFlushGrace{300};
// Shutdown is preceded by holding new calls (api/call_gate.h) until every
// admitted one is done and no call has arrived for kQuietPeriod (a client
// answered a moment ago has had time to send its next call, now parked);
// for at most kMaxHold or half of --shutdown_timeout. A parked call is
// answered UNAVAILABLE kParkedDeadlineMargin before its deadline.
constexpr absl::Duration kQuietPeriod = absl::Milliseconds(50);
constexpr absl::Duration kMaxHold = absl::Seconds(5);
constexpr absl::Duration kParkedDeadlineMargin = absl::Milliseconds(20);
constexpr absl::Duration kHoldPoll = absl::Milliseconds(1);
// From the start of gRPC's Shutdown (which sends GOAWAY) to answering the
// parked calls: long enough for the GOAWAY to reach the clients first, so
// that their next calls go elsewhere instead of racing the shutdown.
constexpr absl::Duration kGoawayLead = absl::Milliseconds(100);
// Streams still open this long before the shutdown deadline are ended by
// the server, UNAVAILABLE once what they read is answered, instead of being
// cancelled by gRPC at the deadline.
constexpr absl::Duration kStreamCloseLead = absl::Seconds(1);
constexpr absl::Duration kStreamPoll = absl::Milliseconds(10);

absl::StatusOr<runtime::DevicePreference> ParseDevice(const std::string& name) {
  if (name == "auto") return runtime::DevicePreference::kAuto;
  if (name == "cpu") return runtime::DevicePreference::kCpu;
  if (name == "cuda") return runtime::DevicePreference::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("--device: unknown '", name, "' (auto|cpu|cuda)"));
}

// SIGTERM/SIGINT: drain and exit; SIGHUP: re-read the TLS files.
sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

void SetHealth(grpc::Server& server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService();
  health->SetServingStatus("", serving);
  health->SetServingStatus(kServiceName, serving);
}

// Holds new calls and returns once every admitted call is done and
// arrivals have stopped, or at `give_up`; parked calls near their deadline
// are answered meanwhile.
void HoldUntilQuiet(api::CallGate& gate, absl::Time give_up) {
  gate.Hold();
  for (absl::Time now = absl::Now(); now < give_up; now = absl::Now()) {
    if (gate.admitted_in_flight() == 0 &&
        now - gate.last_arrival() >= kQuietPeriod) {
      return;
    }
    gate.ReleaseExpiring(kParkedDeadlineMargin);
    absl::SleepFor(kHoldPoll);
  }
}

security::TlsFiles GrpcTlsFiles(const ServerAppOptions& options) {
  return {"--tls", options.tls_cert, options.tls_key, options.tls_client_ca};
}

security::TlsFiles HttpTlsFiles(const ServerAppOptions& options) {
  return {"--http_tls", options.http_tls_cert, options.http_tls_key,
          options.http_tls_client_ca};
}

// The flags go together, and the files load: a bad file fails the start
// here, naming it, before the models take their time to load.
absl::Status ValidateTlsFiles(const security::TlsFiles& files) {
  const std::string& flag = files.flag_prefix;
  if (files.cert.empty() && files.key.empty()) {
    if (files.client_ca.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        flag, "_client_ca needs ", flag, "_cert and ", flag, "_key"));
  }
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "_cert and ", flag, "_key go together"));
  }
  return security::LoadTlsMaterial(files).status();
}

absl::Status ValidateLimits(const ServerAppOptions& options) {
  if (options.max_message_bytes &&
      (*options.max_message_bytes < 1 ||
       *options.max_message_bytes > std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(
        "--max_message_bytes must be in [1, 2147483647]");
  }
  if (options.max_text_bytes < 1) {
    return absl::InvalidArgumentError("--max_text_bytes must be >= 1");
  }
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("--max_concurrent_streams must be >= 1");
  }
  if (options.max_in_flight_per_stream < 1) {
    return absl::InvalidArgumentError(
        "--max_in_flight_per_stream must be >= 1");
  }
  return absl::OkStatus();
}

// Every option is checked before anything loads.
absl::Status ValidateOptions(const ServerAppOptions& options) {
  if (absl::Status valid = runtime::ValidateOverrides(options.batching);
      !valid.ok()) {
    return valid;
  }
  if (options.intra_op_threads && *options.intra_op_threads < 1) {
    return absl::InvalidArgumentError("--intra_op_threads must be >= 1");
  }
  if (options.interop_threads && *options.interop_threads < 1) {
    return absl::InvalidArgumentError("--interop_threads must be >= 1");
  }
  if (options.http_threads < 1) {
    return absl::InvalidArgumentError("--http_threads must be >= 1");
  }
  if (options.http_max_body_bytes < 1) {
    return absl::InvalidArgumentError("--http_max_body_bytes must be >= 1");
  }
  if (options.repository_poll_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--repository_poll_interval must be >= 0");
  }
  if (absl::Status limits = ValidateLimits(options); !limits.ok()) {
    return limits;
  }
  for (const security::TlsFiles& files :
       {GrpcTlsFiles(options), HttpTlsFiles(options)}) {
    if (absl::Status tls = ValidateTlsFiles(files); !tls.ok()) return tls;
  }
  return ParseDevice(options.device).status();
}

// LibTorch's threads are per process, so they are planned once, from the
// default model's config (its latest version) and the flags, before any
// model loads. Reading that config first also rejects a bad flag override
// before anything slow happens.
struct ProcessPlan {
  int intra_op_threads = 1;
  int interop_threads = 1;
  bool gpu = false;
};

absl::StatusOr<ProcessPlan> PlanProcess(const ServerAppOptions& options,
                                        runtime::DevicePreference device) {
  const serving::VersionDirs dirs =
      serving::ScanModel(options.model_repository, options.default_model);
  if (dirs.empty()) {
    return serving::NoVersionError(options.model_repository,
                                   options.default_model);
  }
  const std::string bundle = serving::BundleDir(
      options.model_repository, options.default_model, dirs.rbegin()->first);
  auto config = runtime::LoadBundleConfig(bundle, options.batching);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(bundle, ": ", config.status().message()));
  }
  ProcessPlan plan;
  plan.gpu =
      device == runtime::DevicePreference::kCuda ||
      (device == runtime::DevicePreference::kAuto && runtime::CudaAvailable());
  const int configured =
      options.intra_op_threads.value_or(config->runtime().intra_op_threads());
  plan.intra_op_threads =
      runtime::PlanThreads(runtime::UsableCpuCount(), plan.gpu,
                           config->batching().instance_count(), configured)
          .intra_op_threads;
  plan.interop_threads =
      options.interop_threads.value_or(config->runtime().interop_threads());
  return plan;
}

// One line per model version: "fusion v2: READY (load 3.8s, warm-up 1.9s)".
std::string DescribeVersions(const serving::ModelRegistry& registry) {
  std::string lines;
  for (const serving::ModelStatus& model : registry.ListModels()) {
    for (const serving::VersionStatus& v : model.versions) {
      absl::StrAppend(&lines, model.name, " v", v.version, ": ",
                      serving::VersionStateName(v.state));
      if (v.state == serving::VersionState::kReady) {
        absl::StrAppend(&lines, " (load ", absl::FormatDuration(v.load_time),
                        ", warm-up ", absl::FormatDuration(v.warmup_time), ")");
      }
      if (!v.reason.empty()) absl::StrAppend(&lines, ": ", v.reason);
      lines += "\n";
    }
  }
  return lines;
}

}  // namespace

ServerApp::ServerApp(ServerAppOptions options) : options_(std::move(options)) {}

ServerApp::~ServerApp() {
  // Probes and scrapes read the registry: stop them before it goes.
  state_.ClearRegistry();
  http_.reset();
}

absl::Status ServerApp::Run() {
  // Signals are taken synchronously by this thread only; every thread
  // started from here on inherits the mask.
  const sigset_t signals = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (absl::Status status = Start(); !status.ok()) return status;
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    ReloadTls();
  }
  Log(LogLevel::kInfo, "signal ", signal_number, ": not ready; draining in ",
      absl::FormatDuration(options_.drain_delay));
  Drain();
  return absl::OkStatus();
}

absl::Status ServerApp::Start() {
  if (absl::Status valid = ValidateOptions(options_); !valid.ok()) return valid;
  api::RouteProtobufLogs();
  if (absl::Status started = StartHttp(); !started.ok()) return started;
  if (absl::Status loaded = LoadModels(); !loaded.ok()) return loaded;
  if (absl::Status started = StartGrpc(); !started.ok()) return started;
  if (absl::Status started = StartRepositoryChanges(); !started.ok()) {
    return started;
  }
  state_.SetReady(registry_.get());
  return absl::OkStatus();
}

void ServerApp::ReloadTls() {
  if (grpc_tls_files_ == nullptr && http_tls_files_ == nullptr) {
    Log(LogLevel::kInfo, "SIGHUP: TLS is off; nothing to reload");
    return;
  }
  for (security::CertificateReloader* files :
       {grpc_tls_files_.get(), http_tls_files_.get()}) {
    if (files == nullptr) continue;
    // Success is logged by the reloader, with the new certificate.
    if (absl::Status reloaded = files->Reload(); !reloaded.ok()) {
      Log(LogLevel::kError, "SIGHUP: ", reloaded.message(),
          "; the certificate in force stays");
    }
  }
}

// Probes, /metrics, the v2 HTTP API and the UI: up before the models, so
// that /readyz can say they are loading.
absl::Status ServerApp::StartHttp() {
  // Request limits hold before the first port serves.
  security::SetMaxTextBytes(options_.max_text_bytes);
  metrics_.AddScrapeHook([this] {
    serving::ModelRegistry* registry = state_.registry();
    if (registry == nullptr) return;
    registry->ForEachServable([this](const serving::Servable& servable) {
      const int levels = servable.config().batching().priority_levels();
      for (int priority = 0; priority < levels; ++priority) {
        metrics_.SetQueueDepth(servable.config().name(), servable.version(),
                               priority, servable.queue_depth(priority));
      }
    });
  });
  v2_core_ = std::make_unique<api::v2::InferenceCore>(
      &state_,
      [this](absl::StatusCode code) { metrics_.RecordUnroutedRequest(code); },
      FUSION_VERSION);
  metrics::HttpEndpointOptions http_options;
  http_options.address = options_.http_address;
  http_options.add_routes = [this](httplib::Server& server) {
    api::v2::HttpRoutesOptions routes;
    routes.max_body_bytes = options_.http_max_body_bytes;
    routes.worker_threads = options_.http_threads;
    api::v2::AddV2Routes(server, *v2_core_, routes);
    if (options_.ui) {
      api::ui::AddUiRoutes(server, {&state_, options_.model_repository,
                                    [this](absl::StatusCode code) {
                                      metrics_.RecordUnroutedRequest(code);
                                    }});
    }
  };
  http_options.not_ready_reason = [this] { return state_.NotReadyReason(); };
  http_options.readiness_detail = [this] {
    serving::ModelRegistry* registry = state_.registry();
    return registry == nullptr ? std::string() : DescribeVersions(*registry);
  };
  if (options_.metrics) {
    http_options.metrics_text = [this] { return metrics_.Scrape(); };
  }
  if (!options_.http_tls_cert.empty()) {
    auto files = security::CertificateReloader::Create(HttpTlsFiles(options_));
    if (!files.ok()) return files.status();
    http_tls_files_ = std::move(*files);
    http_options.tls_setup = [files = http_tls_files_.get()](SSL_CTX& ctx) {
      return security::ConfigureHttpsContext(ctx, files);
    };
  }
  auto http = metrics::HttpEndpoint::Start(http_options);
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  Log(LogLevel::kInfo, "HTTP probes on ", options_.http_address,
      http_tls_files_ ? " (HTTPS only)" : " (plain HTTP)");
  return absl::OkStatus();
}

// What changes the models served after start: the repository admin over
// HTTP (its own address) and the poller. The gRPC admin starts with gRPC.
absl::Status ServerApp::StartRepositoryChanges() {
  if (!options_.admin_http_address.empty()) {
    metrics::HttpEndpointOptions admin;
    admin.address = options_.admin_http_address;
    admin.not_ready_reason = [this] { return state_.NotReadyReason(); };
    admin.add_routes = [this](httplib::Server& server) {
      api::v2::AddRepositoryRoutes(server, registry_.get());
    };
    auto started = metrics::HttpEndpoint::Start(admin);
    if (!started.ok()) return started.status();
    admin_http_ = std::move(*started);
    Log(LogLevel::kInfo, "model repository admin via HTTP on ",
        options_.admin_http_address);
  }
  if (options_.repository_poll_interval > absl::ZeroDuration()) {
    poller_ = std::make_unique<serving::RepositoryPoller>(
        registry_.get(), options_.repository_poll_interval);
    Log(LogLevel::kInfo, "rescanning ", options_.model_repository, " every ",
        absl::FormatDuration(options_.repository_poll_interval));
  }
  return absl::OkStatus();
}

absl::Status ServerApp::LoadModels() {
  auto device = ParseDevice(options_.device);
  if (!device.ok()) return device.status();
  auto plan = PlanProcess(options_, *device);
  if (!plan.ok()) return plan.status();
  runtime::SetProcessThreads(plan->intra_op_threads, plan->interop_threads);

  serving::LoaderOptions loader;
  loader.overrides = options_.batching;
  loader.intra_op_threads = plan->intra_op_threads;
  loader.gpu = plan->gpu;
  runtime::TorchRuntimeOptions runtime_options;
  runtime_options.device = *device;
  runtime_options.intra_op_threads = plan->intra_op_threads;
  runtime_options.precision = options_.precision;
  loader.runtime_factory = [runtime_options](
                               const std::string& bundle_dir,
                               const fusion::v1::ModelConfig& config)
      -> absl::StatusOr<std::unique_ptr<runtime::ModelRuntime>> {
    auto created =
        runtime::TorchModelRuntime::Create(bundle_dir, config, runtime_options);
    if (!created.ok()) return created.status();
    return std::unique_ptr<runtime::ModelRuntime>(std::move(*created));
  };
  if (options_.metrics) {
    loader.observer_factory = [this](const std::string& model,
                                     const std::string& version) {
      return metrics_.ForModel(model, version);
    };
  }

  serving::RegistryOptions registry_options;
  registry_options.repository = options_.model_repository;
  registry_options.default_model = options_.default_model;
  registry_options.models = options_.models;
  registry_options.loader = serving::MakeServableLoader(std::move(loader));
  registry_options.on_version_state = [this](const std::string& model,
                                             const serving::VersionStatus& v) {
    const std::string version = std::to_string(v.version);
    switch (v.state) {
      case serving::VersionState::kReady:
        metrics_.SetModelLoaded(model, version,
                                absl::ToDoubleSeconds(v.load_time),
                                absl::ToDoubleSeconds(v.warmup_time));
        break;
      case serving::VersionState::kFailed:
        metrics_.RecordLoadFailure(model, version);
        break;
      case serving::VersionState::kLoading:
      case serving::VersionState::kUnloading:
        metrics_.SetModelReady(model, version, false);
        break;
    }
  };
  // glibc keeps freed heap in its arenas; an unloaded version's tensors
  // would stay resident without this (measured: ~75 MB of ~125 kept).
  registry_options.on_unloaded = [](const std::string&, int64_t) {
    malloc_trim(0);
  };
  auto registry = serving::ModelRegistry::Load(std::move(registry_options));
  if (!registry.ok()) return registry.status();
  registry_ = std::move(*registry);

  const auto default_servable = registry_->Find(options_.default_model, "");
  if (!default_servable.ok()) return default_servable.status();
  const runtime::PrecisionPlan precision = (*default_servable)->precision();
  metrics_.SetBuildInfo({FUSION_VERSION, FUSION_GIT_SHA,
                         runtime::TorchVersion(), (*default_servable)->device(),
                         runtime::LoadedOpenBlasCore().value_or("none"),
                         runtime::PrecisionName(precision)});
  return absl::OkStatus();
}

absl::Status ServerApp::StartGrpc() {
  scoring_ = std::make_unique<api::ScoringServiceImpl>(
      &state_, &gate_,
      [this](absl::StatusCode code) { metrics_.RecordUnroutedRequest(code); },
      options_.max_in_flight_per_stream);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  if (!options_.tls_cert.empty()) {
    auto files = security::CertificateReloader::Create(GrpcTlsFiles(options_));
    if (!files.ok()) return files.status();
    grpc_tls_files_ = std::move(*files);
    grpc_tls_ =
        std::make_unique<security::GrpcTlsCredentials>(grpc_tls_files_.get());
  }
  // Each port its own credentials (see GrpcTlsCredentials::credentials).
  auto port_credentials = [this]() -> std::shared_ptr<grpc::ServerCredentials> {
    if (grpc_tls_) return grpc_tls_->credentials();
    return grpc::InsecureServerCredentials();
  };
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(options_.grpc_address, port_credentials(),
                           &grpc_port);
  builder.RegisterService(scoring_.get());
  inference_ = std::make_unique<api::v2::InferenceServiceImpl>(
      v2_core_.get(), &gate_, options_.max_in_flight_per_stream);
  builder.RegisterService(inference_.get());
  if (options_.max_connection_age > absl::ZeroDuration()) {
    // GOAWAY after the age; calls in flight get the same again to finish.
    const int ms = static_cast<int>(
        absl::ToInt64Milliseconds(options_.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, ms);
  }
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options_.max_concurrent_streams);
  // Fixed at start: the flag, else from the models loaded then (a model
  // loaded later with a larger max_message_bytes is held to this).
  int64_t max_message_bytes = options_.max_message_bytes.value_or(0);
  if (!options_.max_message_bytes) {
    registry_->ForEachServable([&](const serving::Servable& servable) {
      max_message_bytes =
          std::max(max_message_bytes, servable.config().max_message_bytes());
    });
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on gRPC address ", options_.grpc_address));
  }
  SetHealth(*server_, true);
  const auto servable = registry_->Find(options_.default_model, "");
  Log(LogLevel::kInfo, "serving ", options_.default_model, " via gRPC on ",
      options_.grpc_address,
      !grpc_tls_                       ? " (plaintext"
      : options_.tls_client_ca.empty() ? " (TLS"
                                       : " (mutual TLS",
      ", torch ", runtime::TorchVersion(),
      ", OpenBLAS kernels: ", runtime::LoadedOpenBlasCore().value_or("none"),
      ", precision: ", runtime::DescribePrecision((*servable)->precision()),
      ")");

  if (options_.admin_address.empty()) return absl::OkStatus();
  admin_ = std::make_unique<api::ModelRepositoryServiceImpl>(registry_.get());
  grpc::ServerBuilder admin_builder;
  int admin_port = 0;
  admin_builder.AddListeningPort(options_.admin_address, port_credentials(),
                                 &admin_port);
  admin_builder.RegisterService(admin_.get());
  admin_server_ = admin_builder.BuildAndStart();
  if (!admin_server_ || admin_port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on admin address ", options_.admin_address));
  }
  Log(LogLevel::kInfo, "model repository admin via gRPC on ",
      options_.admin_address);
  return absl::OkStatus();
}

void ServerApp::Drain() {
  // No version changes while shutting down.
  poller_.reset();
  admin_http_.reset();
  if (admin_server_) admin_server_->Shutdown();
  state_.StopAdvertising();
  SetHealth(*server_, false);
  for (const serving::ModelStatus& model : registry_->ListModels()) {
    for (const serving::VersionStatus& version : model.versions) {
      metrics_.SetModelReady(model.name, std::to_string(version.version),
                             false);
    }
  }
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(options_.drain_delay));

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.shutdown_timeout;
  // gRPC cancels calls that arrive once its Shutdown has begun (call_gate.h):
  // first make sure clients have none on the way.
  HoldUntilQuiet(gate_,
                 start + std::min(kMaxHold, options_.shutdown_timeout / 2));
  const int64_t held_while_admitted_finished = gate_.refused();
  // Stops accepting connections, sends GOAWAY, and waits for the calls it
  // has (streams, parked calls), cancelling what is left at the deadline.
  std::thread shutdown(
      [this, deadline] { server_->Shutdown(absl::ToChronoTime(deadline)); });
  absl::SleepFor(kGoawayLead);
  state_.StartDraining();  // stream messages and HTTP: UNAVAILABLE from now
  gate_.Release();
  const absl::Time close_streams =
      deadline - std::min(kStreamCloseLead, options_.shutdown_timeout / 2);
  while (gate_.streams()->count() > 0 && absl::Now() < close_streams) {
    absl::SleepFor(kStreamPoll);
  }
  const int64_t streams_closed = gate_.streams()->count();
  gate_.streams()->CloseAll();
  shutdown.join();
  if (streams_closed > 0) {
    Log(LogLevel::kInfo, "ended ", streams_closed,
        " open streams UNAVAILABLE at the shutdown deadline");
  }
  Log(LogLevel::kInfo, "answered ", gate_.refused(),
      " held calls UNAVAILABLE (not started), ", held_while_admitted_finished,
      " of them before shutdown (near their deadline)");
  registry_->DrainAll();
  Log(LogLevel::kInfo, "drained in ",
      absl::FormatDuration(absl::Now() - start));
  // Shutdown returns once the last response is handed to the transport, not
  // once it is on the wire: closing the sockets at once reset streams whose
  // final responses were still in flight (seen in tests). Let them flush.
  std::this_thread::sleep_for(kFlushGrace);
}

}  // namespace fusion
