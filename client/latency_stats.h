// Latency percentiles and status-code tallies. Pure; not thread-safe (callers
// that share a StatusCounts lock around it).
#ifndef FUSION_CLIENT_LATENCY_STATS_H_
#define FUSION_CLIENT_LATENCY_STATS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace fusion::client {

// Nearest-rank percentile: the smallest value v in `sorted` (ascending, not
// empty) such that at least p% of the values are <= v. p in (0, 100];
// p <= 0 gives the minimum. Monotone in p, and p = 100 gives the maximum.
int64_t NearestRankPercentile(const std::vector<int64_t>& sorted, double p);

struct LatencySummary {
  int64_t count = 0;
  double min_us = 0, mean_us = 0, p50_us = 0, p90_us = 0, p99_us = 0,
         p999_us = 0, max_us = 0;
};

// Summary of latencies in nanoseconds (sorted in place). All zero when empty.
LatencySummary SummarizeLatencies(std::vector<int64_t>& latencies_ns);

// Tallies of final status codes.
class StatusCounts {
 public:
  void Add(absl::StatusCode code, int64_t n = 1);
  void Merge(const StatusCounts& other);
  int64_t total() const;
  int64_t ok() const { return counts_[0]; }
  int64_t errors() const { return total() - ok(); }
  // Non-zero error counts by code name ("UNAVAILABLE": 3, ...).
  std::map<std::string, int64_t> ErrorsByName() const;
  // "UNAVAILABLE=3 INVALID_ARGUMENT=1", or "none".
  std::string ErrorsToString() const;

 private:
  static constexpr int kCodes = 17;           // OK .. UNAUTHENTICATED
  std::array<int64_t, kCodes + 1> counts_{};  // last slot: unknown codes
};

}  // namespace fusion::client

#endif  // FUSION_CLIENT_LATENCY_STATS_H_
