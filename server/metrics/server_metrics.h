// The server's Prometheus metrics (prometheus-cpp core registry; the text
// exposition is served by HttpEndpoint).
//
// Hot-path cost: every per-request handle is created up front (one set per
// model version), so recording is a few atomic adds, never a Family lookup.
// Gauges that describe state (queue depth, process stats) are refreshed at
// scrape time instead of on every request. Thread-safe.
#ifndef FUSION_SERVER_METRICS_SERVER_METRICS_H_
#define FUSION_SERVER_METRICS_SERVER_METRICS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/serving/serving_observer.h"

namespace fusion::metrics {

struct BuildInfo {
  std::string version;
  std::string git_sha;
  std::string torch_version;
  std::string device;
  std::string blas_kernels;  // OpenBLAS core type, or "none"
  std::string precision;     // the default model's: "fp32" or "bf16"
};

class ServerMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics();

  // Publishes fusion_build_info (once the device is known).
  void SetBuildInfo(const BuildInfo& build);

  // The observer of one model version; owned by ServerMetrics, valid for its
  // lifetime. Calling it twice for one model version returns the same one.
  serving::ServingObserver* ForModel(const std::string& model,
                                     const std::string& version);

  // Marks a model version loaded (fusion_model_ready=1) and records its load
  // time and, of that, its warm-up time.
  void SetModelLoaded(const std::string& model, const std::string& version,
                      double load_seconds, double warmup_seconds);
  // A version that failed to load (fusion_model_load_failures_total).
  void RecordLoadFailure(const std::string& model, const std::string& version);
  void SetModelReady(const std::string& model, const std::string& version,
                     bool ready);

  // A request that named no loaded model (or arrived while loading or
  // draining): counted under model="" version="".
  void RecordUnroutedRequest(absl::StatusCode code);

  // Run at every scrape before serialising; sets queue-depth gauges, etc.
  using ScrapeHook = std::function<void()>;
  void AddScrapeHook(ScrapeHook hook);
  // Sets fusion_queue_depth{model,version,priority}.
  void SetQueueDepth(const std::string& model, const std::string& version,
                     int priority, int depth);

  // The Prometheus text exposition format (0.0.4).
  std::string Scrape();

 private:
  class ModelObserver;
  void RefreshProcessMetrics();

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& queue_duration_;
  prometheus::Family<prometheus::Histogram>& compute_duration_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Histogram>& batch_duration_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& inflight_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Counter>& forward_failures_;
  prometheus::Family<prometheus::Gauge>& model_ready_;
  prometheus::Family<prometheus::Gauge>& model_load_duration_;
  prometheus::Family<prometheus::Gauge>& model_warmup_duration_;
  prometheus::Family<prometheus::Counter>& model_load_failures_;
  prometheus::Gauge& resident_memory_;
  prometheus::Counter& cpu_seconds_;  // advanced to /proc's value
  double cpu_seconds_seen_ ABSL_GUARDED_BY(mu_) = 0;
  prometheus::Gauge& open_fds_;
  prometheus::Gauge& start_time_;
  std::vector<prometheus::Counter*> unrouted_by_code_;

  absl::Mutex mu_;  // guards model creation and hooks, not recording
  std::vector<std::unique_ptr<ModelObserver>> models_ ABSL_GUARDED_BY(mu_);
  std::vector<ScrapeHook> hooks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::metrics

#endif  // FUSION_SERVER_METRICS_SERVER_METRICS_H_
