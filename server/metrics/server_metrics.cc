#include "server/metrics/server_metrics.h"

#include <array>
#include <sstream>

#include "absl/status/status.h"
#include "prometheus/text_serializer.h"
#include "server/metrics/process_stats.h"

namespace fusion::metrics {
namespace {

using prometheus::Histogram;

constexpr int kStatusCodes = 17;  // OK .. UNAUTHENTICATED

// 100 µs to 10 s, 1-2.5-5 steps.
const Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *buckets;
}

const Histogram::BucketBoundaries& BatchSizeBuckets() {
  static const auto* buckets =
      new Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256};
  return *buckets;
}

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int CodeIndex(absl::StatusCode code) {
  const int index = static_cast<int>(code);
  return index >= 0 && index < kStatusCodes
             ? index
             : static_cast<int>(absl::StatusCode::kUnknown);
}

}  // namespace

class ServerMetrics::ModelObserver final : public serving::ServingObserver {
 public:
  ModelObserver(ServerMetrics& m, std::string model, std::string version)
      : model_(std::move(model)), version_(std::move(version)) {
    const prometheus::Labels labels{{"model", model_}, {"version", version_}};
    for (int code = 0; code < kStatusCodes; ++code) {
      prometheus::Labels with_code = labels;
      with_code["code"] = CodeName(code);
      requests_[code] = &m.requests_.Add(with_code);
    }
    request_duration_ = &m.request_duration_.Add(labels, DurationBuckets());
    queue_duration_ = &m.queue_duration_.Add(labels, DurationBuckets());
    compute_duration_ = &m.compute_duration_.Add(labels, DurationBuckets());
    batch_size_ = &m.batch_size_.Add(labels, BatchSizeBuckets());
    batch_duration_ = &m.batch_duration_.Add(labels, DurationBuckets());
    inflight_ = &m.inflight_.Add(labels);
    prometheus::Labels real = labels, padded = labels;
    real["kind"] = "real";
    padded["kind"] = "padded";
    real_tokens_ = &m.tokens_.Add(real);
    padded_tokens_ = &m.tokens_.Add(padded);
    forward_failures_ = &m.forward_failures_.Add(labels);
  }

  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }

  void OnRequestStarted() override { inflight_->Increment(); }

  void OnRequestFinished(absl::StatusCode code, absl::Duration total,
                         absl::Duration queued,
                         absl::Duration computed) override {
    inflight_->Decrement();
    requests_[CodeIndex(code)]->Increment();
    request_duration_->Observe(absl::ToDoubleSeconds(total));
    if (code == absl::StatusCode::kOk) {
      queue_duration_->Observe(absl::ToDoubleSeconds(queued));
      compute_duration_->Observe(absl::ToDoubleSeconds(computed));
    }
  }

  void OnBatchComputed(const serving::BatchStats& stats) override {
    batch_size_->Observe(stats.size);
    batch_duration_->Observe(absl::ToDoubleSeconds(stats.compute));
    real_tokens_->Increment(static_cast<double>(stats.real_tokens));
    padded_tokens_->Increment(
        static_cast<double>(stats.computed_tokens - stats.real_tokens));
  }

  void OnForwardFailed(int requests) override {
    forward_failures_->Increment(requests);
  }

 private:
  const std::string model_;
  const std::string version_;
  std::array<prometheus::Counter*, kStatusCodes> requests_{};
  Histogram* request_duration_ = nullptr;
  Histogram* queue_duration_ = nullptr;
  Histogram* compute_duration_ = nullptr;
  Histogram* batch_size_ = nullptr;
  Histogram* batch_duration_ = nullptr;
  prometheus::Gauge* inflight_ = nullptr;
  prometheus::Counter* real_tokens_ = nullptr;
  prometheus::Counter* padded_tokens_ = nullptr;
  prometheus::Counter* forward_failures_ = nullptr;
};

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("fusion_requests_total")
                    .Help("Scoring requests by final gRPC status code")
                    .Register(*registry_)),
      request_duration_(prometheus::BuildHistogram()
                            .Name("fusion_request_duration_seconds")
                            .Help("Arrival to response inside the server")
                            .Register(*registry_)),
      queue_duration_(prometheus::BuildHistogram()
                          .Name("fusion_queue_duration_seconds")
                          .Help("Arrival to the start of the request's batch")
                          .Register(*registry_)),
      compute_duration_(prometheus::BuildHistogram()
                            .Name("fusion_compute_duration_seconds")
                            .Help("Collate, forward and split of the "
                                  "request's batch")
                            .Register(*registry_)),
      batch_size_(prometheus::BuildHistogram()
                      .Name("fusion_batch_size")
                      .Help("Requests per computed batch")
                      .Register(*registry_)),
      batch_duration_(prometheus::BuildHistogram()
                          .Name("fusion_batch_duration_seconds")
                          .Help("Collate, forward and split of one batch "
                                "(the per-request figure weighs big batches "
                                "more)")
                          .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("fusion_queue_depth")
                       .Help("Requests waiting in the batch queue")
                       .Register(*registry_)),
      inflight_(prometheus::BuildGauge()
                    .Name("fusion_inflight_requests")
                    .Help("Requests accepted and not yet answered")
                    .Register(*registry_)),
      tokens_(prometheus::BuildCounter()
                  .Name("fusion_tokens_total")
                  .Help("Tokens computed: kind=real (the requests' own) or "
                        "kind=padded (padding added to fill a batch); "
                        "padding efficiency = real / (real + padded)")
                  .Register(*registry_)),
      forward_failures_(
          prometheus::BuildCounter()
              .Name("fusion_forward_failures_total")
              .Help("Requests the model's forward failed on, answered "
                    "INTERNAL. A failed batch is computed again in halves, "
                    "so only requests that fail alone count")
              .Register(*registry_)),
      model_ready_(prometheus::BuildGauge()
                       .Name("fusion_model_ready")
                       .Help("1 when the model version is loaded, warmed up "
                             "and accepting requests")
                       .Register(*registry_)),
      model_load_duration_(prometheus::BuildGauge()
                               .Name("fusion_model_load_duration_seconds")
                               .Help("Load and warm-up time of the version")
                               .Register(*registry_)),
      model_warmup_duration_(
          prometheus::BuildGauge()
              .Name("fusion_model_warmup_duration_seconds")
              .Help("Warm-up time of the version (part of its load time)")
              .Register(*registry_)),
      model_load_failures_(
          prometheus::BuildCounter()
              .Name("fusion_model_load_failures_total")
              .Help("Loads of the version that failed (the versions serving "
                    "before go on serving)")
              .Register(*registry_)),
      resident_memory_(prometheus::BuildGauge()
                           .Name("process_resident_memory_bytes")
                           .Help("Resident memory size in bytes")
                           .Register(*registry_)
                           .Add({})),
      cpu_seconds_(prometheus::BuildCounter()
                       .Name("process_cpu_seconds_total")
                       .Help("User and system CPU time spent in seconds")
                       .Register(*registry_)
                       .Add({})),
      open_fds_(prometheus::BuildGauge()
                    .Name("process_open_fds")
                    .Help("Number of open file descriptors")
                    .Register(*registry_)
                    .Add({})),
      start_time_(prometheus::BuildGauge()
                      .Name("process_start_time_seconds")
                      .Help("Start time of the process since the Unix epoch")
                      .Register(*registry_)
                      .Add({})) {
  for (int code = 0; code < kStatusCodes; ++code) {
    unrouted_by_code_.push_back(&requests_.Add(
        {{"model", ""}, {"version", ""}, {"code", CodeName(code)}}));
  }
}

ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::SetBuildInfo(const BuildInfo& build) {
  prometheus::BuildGauge()
      .Name("fusion_build_info")
      .Help("Build and runtime description; the value is always 1")
      .Register(*registry_)
      .Add({{"version", build.version},
            {"git_sha", build.git_sha},
            {"torch_version", build.torch_version},
            {"device", build.device},
            {"blas_kernels", build.blas_kernels},
            {"precision", build.precision}})
      .Set(1);
}

serving::ServingObserver* ServerMetrics::ForModel(const std::string& model,
                                                  const std::string& version) {
  absl::MutexLock lock(&mu_);
  for (const auto& observer : models_) {
    if (observer->model() == model && observer->version() == version) {
      return observer.get();
    }
  }
  models_.push_back(std::make_unique<ModelObserver>(*this, model, version));
  return models_.back().get();
}

void ServerMetrics::SetModelLoaded(const std::string& model,
                                   const std::string& version,
                                   double load_seconds, double warmup_seconds) {
  model_load_duration_.Add({{"model", model}, {"version", version}})
      .Set(load_seconds);
  model_warmup_duration_.Add({{"model", model}, {"version", version}})
      .Set(warmup_seconds);
  SetModelReady(model, version, true);
}

void ServerMetrics::RecordLoadFailure(const std::string& model,
                                      const std::string& version) {
  model_load_failures_.Add({{"model", model}, {"version", version}})
      .Increment();
  SetModelReady(model, version, false);
}

void ServerMetrics::SetModelReady(const std::string& model,
                                  const std::string& version, bool ready) {
  model_ready_.Add({{"model", model}, {"version", version}}).Set(ready ? 1 : 0);
}

void ServerMetrics::RecordUnroutedRequest(absl::StatusCode code) {
  unrouted_by_code_[CodeIndex(code)]->Increment();
}

void ServerMetrics::AddScrapeHook(ScrapeHook hook) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(std::move(hook));
}

void ServerMetrics::SetQueueDepth(const std::string& model,
                                  const std::string& version, int priority,
                                  int depth) {
  queue_depth_
      .Add({{"model", model},
            {"version", version},
            {"priority", std::to_string(priority)}})
      .Set(depth);
}

void ServerMetrics::RefreshProcessMetrics() {
  auto stats = ReadProcessStats();
  if (!stats) return;
  resident_memory_.Set(stats->resident_memory_bytes);
  open_fds_.Set(stats->open_fds);
  start_time_.Set(stats->start_time_seconds);
  absl::MutexLock lock(&mu_);
  if (stats->cpu_seconds > cpu_seconds_seen_) {
    cpu_seconds_.Increment(stats->cpu_seconds - cpu_seconds_seen_);
    cpu_seconds_seen_ = stats->cpu_seconds;
  }
}

std::string ServerMetrics::Scrape() {
  std::vector<ScrapeHook> hooks;
  {
    absl::MutexLock lock(&mu_);
    hooks = hooks_;
  }
  for (const ScrapeHook& hook : hooks) hook();
  RefreshProcessMetrics();
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace fusion::metrics
