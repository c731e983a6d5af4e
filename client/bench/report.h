// fusion-bench output: a human table and JSON. Pure; thread-safe.
#ifndef FUSION_CLIENT_BENCH_REPORT_H_
#define FUSION_CLIENT_BENCH_REPORT_H_

#include <cstdio>
#include <string>
#include <vector>

#include "client/bench/load_loop.h"
#include "nlohmann/json.hpp"

namespace fusion::bench {

struct BenchConfig {
  std::string target, lb, model;
  std::string mode;  // "unary" | "stream"
  // "native" (Score/ScoreStream), "v2" (ModelInfer/ModelStreamInfer), or
  // "native,v2": each level run once per protocol (LevelResult::protocol).
  std::string protocol = "native";
  bool v2_raw = false;  // v2: raw_input_contents instead of typed contents
  bool open_loop = false;
  std::string workload;
  double warmup_s = 0, duration_s = 0, attention_fraction = 0;
  int channels = 1, streams = 0;
  std::string rate_profile;  // --rate_profile as given, or empty
  double timeline_s = 0;     // the timeline's slice, 0: none
};

// Cores the generator process used per 1000 responses/s in the window
// (0 when nothing completed).
double ClientCoresPer1kRps(const LevelResult& level);

// {"config": {...}, "runs": [{concurrency|rate, throughput_rps, ok_rps,
//  completed, window_s, latency_us{min, mean, p50, p90, p99, p999, max},
//  errors{CODE: n}, by_code{CODE: {count, latency_us{...}, service_us{...}}},
//  server{mean_batch_size, mean_queue_us, mean_compute_us,
//  mean_total_us}, client{cpu_seconds, cpu_cores, cores_per_1k_rps,
//  mean_send_lag_us, max_send_lag_us}, totals{...}, unfinished, protocol,
//  window_start_monotonic_s}],
//  "totals": {requests, ok, errors{CODE: n}}}. Totals count every request
// of the run, warmup and drain included (what the servers saw). by_code
// holds OK too: latency_us from the intended send time, service_us from the
// hand-over to gRPC (see recorder.h).
// With a rate profile, each run also has "phases": [{rate, start_s,
// duration_s, requests, ok_rps, codes{CODE: n}, latency_us{...},
// by_code{...}}]; with a timeline, "timeline": [{t_s, requests,
// codes{CODE: n}, ok_p50_us, ok_p99_us, ok_max_us[, ok_latencies_us]}] (OK
// latencies from the intended send time; null in a slice without OK
// responses; the list only with --timeline_latencies).
// config holds "protocol"; with v2 runs also "v2_contents" ("typed" |
// "raw") and "server_timing" (a sentence saying why the v2 runs' "server"
// values are null: v2 responses carry no per-request timing).
nlohmann::json ReportJson(const BenchConfig& config,
                          const std::vector<LevelResult>& levels);

// One header, then one row per level, then errors and generator CPU.
void PrintTable(std::FILE* out, const BenchConfig& config,
                const std::vector<LevelResult>& levels);

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_REPORT_H_
