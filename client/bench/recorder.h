// Collects the outcome of every request of one load level. Record() is
// thread-safe (gRPC callback threads call it); the summaries are computed
// once the level has drained.
//
// Two latencies per request: `latency` from its intended send time (what an
// open-loop user waits, the generator's own lag included) and `service`
// from the moment it was handed to gRPC (what the network and the server
// took). Both are kept per final status code, so that a refusal's time
// (RESOURCE_EXHAUSTED) is never mixed with an answer's.
#ifndef FUSION_CLIENT_BENCH_RECORDER_H_
#define FUSION_CLIENT_BENCH_RECORDER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/latency_stats.h"

namespace fusion::bench {

// Monotonic clock in nanoseconds, shared by loops and senders.
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Outcome {
  int64_t intended_ns = 0;  // when the load model wanted it sent
  int64_t sent_ns = 0;      // when it was handed to gRPC
  int64_t end_ns = 0;       // when the response (or error) arrived
  absl::StatusCode code = absl::StatusCode::kOk;
  // From the response's timing (OK responses only).
  int32_t batch_size = 0;
  int64_t queue_us = 0, compute_us = 0, server_total_us = 0;
};

// The requests of one final status code.
struct CodeLatency {
  client::LatencySummary latency;  // from the intended send time
  client::LatencySummary service;  // from the hand-over to gRPC
};

// Requests intended in a span of time: their codes and latencies.
struct SpanStats {
  client::StatusCounts codes;
  client::LatencySummary latency;              // every status
  std::map<std::string, CodeLatency> by_code;  // "OK", "RESOURCE_EXHAUSTED"..
};

struct LevelStats {
  int64_t completed_in_window = 0;  // responses that arrived in the window
  // Requests intended in the window: latency from intended send time to
  // response (every status), and their codes.
  client::LatencySummary latency;
  client::StatusCounts window_codes;
  std::map<std::string, CodeLatency> by_code;  // the same, per status code
  client::StatusCounts all_codes;              // warmup and drain included
  // Means over OK responses intended in the window.
  double mean_batch_size = 0, mean_queue_us = 0, mean_compute_us = 0,
         mean_server_total_us = 0;
  // Generator lag (sent - intended) over requests intended in the window.
  double mean_send_lag_us = 0, max_send_lag_us = 0;
};

// One slice of a timeline: requests intended in [t_s, t_s + bucket).
struct TimelinePoint {
  double t_s = 0;  // from the window's start
  client::StatusCounts codes;
  client::LatencySummary ok_latency;  // OK responses, from intended time
  // Their latencies (us, in the order they were intended), when asked for:
  // to take percentiles over any span of slices.
  std::vector<int64_t> ok_latencies_us;
};

class Recorder {
 public:
  // The measurement window [start_ns, end_ns); set before any Record.
  Recorder(int64_t window_start_ns, int64_t window_end_ns);

  void Record(const Outcome& outcome);
  LevelStats Summarize();
  // Requests intended in [start_ns, end_ns), clipped to the window.
  SpanStats SummarizeSpan(int64_t start_ns, int64_t end_ns);
  // The window cut into `bucket_ns` slices (> 0), in order; with
  // `latencies`, each slice lists its OK latencies too.
  std::vector<TimelinePoint> Timeline(int64_t bucket_ns, bool latencies);

 private:
  // A request intended in the window.
  struct Sample {
    int64_t intended_ns;
    int64_t latency_ns;  // end - intended
    int64_t service_ns;  // end - sent
    absl::StatusCode code;
  };

  // With mu_ held.
  SpanStats SummarizeSamples(int64_t start_ns, int64_t end_ns);

  const int64_t start_ns_, end_ns_;
  std::mutex mu_;
  std::vector<Sample> samples_;  // guarded by mu_
  LevelStats stats_;             // guarded by mu_ (sums, then means)
  int64_t ok_in_window_ = 0;     // guarded by mu_
  double lag_sum_us_ = 0;        // guarded by mu_
};

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_RECORDER_H_
