// Open-loop arrival times: a Poisson process (exponential gaps, mean
// 1/rate), at one rate or at a rate that steps at given times (a burst),
// and the syntax of such a rate profile. Pure; PoissonArrivals is not
// thread-safe (one generator thread owns it).
#ifndef FUSION_CLIENT_BENCH_ARRIVALS_H_
#define FUSION_CLIENT_BENCH_ARRIVALS_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fusion::bench {

// One phase of an open-loop rate profile.
struct RatePhase {
  double rate = 0;          // requests/s, > 0
  absl::Duration duration;  // > 0
};

// "RATE:DURATION,RATE:DURATION,..." (e.g. "1000:5s,10000:30s,1000:10s"):
// rates > 0, durations > 0 in absl's syntax. INVALID_ARGUMENT names the
// first bad phase.
absl::StatusOr<std::vector<RatePhase>> ParseRateProfile(absl::string_view spec);

class PoissonArrivals {
 public:
  // The rate `rate_per_s` from `from_ns` (an offset from the first
  // arrival's origin) until the next step.
  struct Step {
    int64_t from_ns = 0;
    double rate_per_s = 0;
  };

  // rate_per_s > 0.
  PoissonArrivals(double rate_per_s, uint64_t seed);
  // steps: not empty, steps[0].from_ns == 0, from_ns strictly increasing,
  // every rate > 0. A gap that would cross a step is drawn again from the
  // step at the new rate (exact for a Poisson process: it has no memory).
  PoissonArrivals(std::vector<Step> steps, uint64_t seed);

  // Nanoseconds from the previous arrival (or the origin) to the next (>= 0).
  int64_t NextGapNs();

 private:
  std::mt19937_64 engine_;
  std::vector<Step> steps_;
  size_t step_ = 0;     // the step holding now_ns_
  int64_t now_ns_ = 0;  // the previous arrival, from the origin
  std::exponential_distribution<double> gap_s_;
};

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_ARRIVALS_H_
