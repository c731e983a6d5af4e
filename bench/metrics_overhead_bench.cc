// What Prometheus metrics cost on the request path: the observer calls one
// request makes (started + finished) and one batch makes, single-threaded and
// with threads recording at once (contention on the shared atomics), plus a
// scrape. Compare with the ~900 µs of compute a request costs on this CPU
// (bench/results/batching_cpu.json): the served-throughput comparison of
// metrics on/off is dominated by ±10% run-to-run noise on a shared 2-core
// machine, so the overhead is measured directly here.
//   build/bench/metrics_overhead_bench --benchmark_out=metrics.json
#include <benchmark/benchmark.h>

#include "absl/time/time.h"
#include "server/metrics/server_metrics.h"

namespace {

fusion::metrics::ServerMetrics& Metrics() {
  static auto* metrics = new fusion::metrics::ServerMetrics();
  return *metrics;
}

void BM_RequestObserved(benchmark::State& state) {
  fusion::serving::ServingObserver* observer =
      Metrics().ForModel("fusion", "1");
  for (auto _ : state) {
    observer->OnRequestStarted();
    observer->OnRequestFinished(absl::StatusCode::kOk, absl::Milliseconds(3),
                                absl::Milliseconds(1), absl::Milliseconds(2));
  }
}
BENCHMARK(BM_RequestObserved)->Threads(1)->Threads(2)->UseRealTime();

void BM_BatchObserved(benchmark::State& state) {
  fusion::serving::ServingObserver* observer =
      Metrics().ForModel("fusion", "1");
  for (auto _ : state)
    observer->OnBatchComputed({32, 400, 512, absl::Milliseconds(12)});
}
BENCHMARK(BM_BatchObserved);

void BM_Scrape(benchmark::State& state) {
  Metrics().ForModel("fusion", "1");
  for (auto _ : state) benchmark::DoNotOptimize(Metrics().Scrape());
}
BENCHMARK(BM_Scrape);

}  // namespace

BENCHMARK_MAIN();
