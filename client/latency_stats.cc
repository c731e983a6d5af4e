#include "client/latency_stats.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace fusion::client {

int64_t NearestRankPercentile(const std::vector<int64_t>& sorted, double p) {
  const size_t n = sorted.size();
  if (p <= 0) return sorted.front();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

LatencySummary SummarizeLatencies(std::vector<int64_t>& latencies_ns) {
  LatencySummary s;
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.count = static_cast<int64_t>(latencies_ns.size());
  double sum = 0;
  for (int64_t v : latencies_ns) sum += v;
  auto us = [](int64_t ns) { return ns / 1000.0; };
  s.min_us = us(latencies_ns.front());
  s.mean_us = sum / s.count / 1000.0;
  s.p50_us = us(NearestRankPercentile(latencies_ns, 50));
  s.p90_us = us(NearestRankPercentile(latencies_ns, 90));
  s.p99_us = us(NearestRankPercentile(latencies_ns, 99));
  s.p999_us = us(NearestRankPercentile(latencies_ns, 99.9));
  s.max_us = us(latencies_ns.back());
  return s;
}

void StatusCounts::Add(absl::StatusCode code, int64_t n) {
  const int index = static_cast<int>(code);
  counts_[index >= 0 && index < kCodes ? index : kCodes] += n;
}

void StatusCounts::Merge(const StatusCounts& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

int64_t StatusCounts::total() const {
  int64_t sum = 0;
  for (int64_t c : counts_) sum += c;
  return sum;
}

std::map<std::string, int64_t> StatusCounts::ErrorsByName() const {
  std::map<std::string, int64_t> out;
  for (int i = 1; i < kCodes; ++i) {
    if (counts_[i] > 0) {
      out[absl::StatusCodeToString(static_cast<absl::StatusCode>(i))] =
          counts_[i];
    }
  }
  if (counts_[kCodes] > 0) out["UNKNOWN_CODE"] = counts_[kCodes];
  return out;
}

std::string StatusCounts::ErrorsToString() const {
  std::string out;
  for (const auto& [name, count] : ErrorsByName()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", name, "=", count);
  }
  return out.empty() ? "none" : out;
}

}  // namespace fusion::client
