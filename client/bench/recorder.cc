#include "client/bench/recorder.h"

#include <algorithm>

namespace fusion::bench {
namespace {

std::string CodeName(absl::StatusCode code) {
  return absl::StatusCodeToString(code);
}

}  // namespace

Recorder::Recorder(int64_t window_start_ns, int64_t window_end_ns)
    : start_ns_(window_start_ns), end_ns_(window_end_ns) {
  samples_.reserve(1 << 16);
}

void Recorder::Record(const Outcome& o) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.all_codes.Add(o.code);
  if (o.end_ns >= start_ns_ && o.end_ns < end_ns_) {
    ++stats_.completed_in_window;
  }
  if (o.intended_ns < start_ns_ || o.intended_ns >= end_ns_) return;
  samples_.push_back(
      {o.intended_ns, o.end_ns - o.intended_ns, o.end_ns - o.sent_ns, o.code});
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

SpanStats Recorder::SummarizeSamples(int64_t start_ns, int64_t end_ns) {
  SpanStats out;
  std::vector<int64_t> all;
  std::map<absl::StatusCode, std::pair<std::vector<int64_t>,
                                       std::vector<int64_t>>>
      by_code;  // latency, service
  for (const Sample& s : samples_) {
    if (s.intended_ns < start_ns || s.intended_ns >= end_ns) continue;
    out.codes.Add(s.code);
    all.push_back(s.latency_ns);
    auto& [latency, service] = by_code[s.code];
    latency.push_back(s.latency_ns);
    service.push_back(s.service_ns);
  }
  out.latency = client::SummarizeLatencies(all);
  for (auto& [code, latencies] : by_code) {
    CodeLatency& entry = out.by_code[CodeName(code)];
    entry.latency = client::SummarizeLatencies(latencies.first);
    entry.service = client::SummarizeLatencies(latencies.second);
  }
  return out;
}

LevelStats Recorder::Summarize() {
  std::lock_guard<std::mutex> lock(mu_);
  LevelStats out = stats_;
  SpanStats window = SummarizeSamples(start_ns_, end_ns_);
  out.latency = window.latency;
  out.window_codes = window.codes;
  out.by_code = std::move(window.by_code);
  if (!samples_.empty()) {
    out.mean_send_lag_us = lag_sum_us_ / samples_.size();
  }
  if (ok_in_window_ > 0) {
    out.mean_batch_size /= ok_in_window_;
    out.mean_queue_us /= ok_in_window_;
    out.mean_compute_us /= ok_in_window_;
    out.mean_server_total_us /= ok_in_window_;
  }
  return out;
}

SpanStats Recorder::SummarizeSpan(int64_t start_ns, int64_t end_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  return SummarizeSamples(std::max(start_ns, start_ns_),
                          std::min(end_ns, end_ns_));
}

std::vector<TimelinePoint> Recorder::Timeline(int64_t bucket_ns,
                                              bool latencies) {
  std::lock_guard<std::mutex> lock(mu_);
  std::sort(samples_.begin(), samples_.end(),
            [](const Sample& a, const Sample& b) {
              return a.intended_ns < b.intended_ns;
            });
  std::vector<TimelinePoint> out;
  size_t i = 0;
  std::vector<int64_t> ok;
  for (int64_t from = start_ns_; from < end_ns_; from += bucket_ns) {
    TimelinePoint point;
    point.t_s = (from - start_ns_) / 1e9;
    ok.clear();
    for (; i < samples_.size() && samples_[i].intended_ns < from + bucket_ns;
         ++i) {
      point.codes.Add(samples_[i].code);
      if (samples_[i].code == absl::StatusCode::kOk) {
        ok.push_back(samples_[i].latency_ns);
        if (latencies) {
          point.ok_latencies_us.push_back(samples_[i].latency_ns / 1000);
        }
      }
    }
    point.ok_latency = client::SummarizeLatencies(ok);
    out.push_back(std::move(point));
  }
  return out;
}

}  // namespace fusion::bench
