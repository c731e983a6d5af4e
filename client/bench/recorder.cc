#include "client/bench/recorder.h"

#include <algorithm>

namespace fusion::bench {

Recorder::Recorder(int64_t window_start_ns, int64_t window_end_ns)
    : start_ns_(window_start_ns), end_ns_(window_end_ns) {
  latencies_ns_.reserve(1 << 16);
}

void Recorder::Record(const Outcome& o) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.all_codes.Add(o.code);
  if (o.end_ns >= start_ns_ && o.end_ns < end_ns_) {
    ++stats_.completed_in_window;
  }
  if (o.intended_ns < start_ns_ || o.intended_ns >= end_ns_) return;
  latencies_ns_.push_back(o.end_ns - o.intended_ns);
  stats_.window_codes.Add(o.code);
  const double lag_us = (o.sent_ns - o.intended_ns) / 1000.0;
  lag_sum_us_ += lag_us;
  stats_.max_send_lag_us = std::max(stats_.max_send_lag_us, lag_us);
  if (o.code == absl::StatusCode::kOk) {
    ++ok_in_window_;
    stats_.mean_batch_size += o.batch_size;
    stats_.mean_queue_us += o.queue_us;
    stats_.mean_compute_us += o.compute_us;
    stats_.mean_server_total_us += o.server_total_us;
  }
}

LevelStats Recorder::Summarize() {
  std::lock_guard<std::mutex> lock(mu_);
  LevelStats out = stats_;
  out.latency = client::SummarizeLatencies(latencies_ns_);
  if (!latencies_ns_.empty()) {
    out.mean_send_lag_us = lag_sum_us_ / latencies_ns_.size();
  }
  if (ok_in_window_ > 0) {
    out.mean_batch_size /= ok_in_window_;
    out.mean_queue_us /= ok_in_window_;
    out.mean_compute_us /= ok_in_window_;
    out.mean_server_total_us /= ok_in_window_;
  }
  return out;
}

}  // namespace fusion::bench
