// Collects the outcome of every request of one load level. Record() is
// thread-safe (gRPC callback threads call it); Summarize() is called once the
// level has drained.
#ifndef FUSION_CLIENT_BENCH_RECORDER_H_
#define FUSION_CLIENT_BENCH_RECORDER_H_

#include <chrono>
#include <cstdint>
#include <mutex>
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

struct LevelStats {
  int64_t completed_in_window = 0;  // responses that arrived in the window
  // Requests intended in the window: latency from intended send time to
  // response (every status), and their codes.
  client::LatencySummary latency;
  client::StatusCounts window_codes;
  client::StatusCounts all_codes;  // warmup and drain included
  // Means over OK responses intended in the window.
  double mean_batch_size = 0, mean_queue_us = 0, mean_compute_us = 0,
         mean_server_total_us = 0;
  // Generator lag (sent - intended) over requests intended in the window.
  double mean_send_lag_us = 0, max_send_lag_us = 0;
};

class Recorder {
 public:
  // The measurement window [start_ns, end_ns); set before any Record.
  Recorder(int64_t window_start_ns, int64_t window_end_ns);

  void Record(const Outcome& outcome);
  LevelStats Summarize();

 private:
  const int64_t start_ns_, end_ns_;
  std::mutex mu_;
  std::vector<int64_t> latencies_ns_;  // guarded by mu_
  LevelStats stats_;                   // guarded by mu_ (sums, then means)
  int64_t ok_in_window_ = 0;           // guarded by mu_
  double lag_sum_us_ = 0;              // guarded by mu_
};

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_RECORDER_H_
