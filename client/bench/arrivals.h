// Open-loop arrival times: a Poisson process (exponential gaps, mean
// 1/rate). Pure; not thread-safe (one generator thread owns it).
#ifndef FUSION_CLIENT_BENCH_ARRIVALS_H_
#define FUSION_CLIENT_BENCH_ARRIVALS_H_

#include <cstdint>
#include <random>

namespace fusion::bench {

class PoissonArrivals {
 public:
  // rate_per_s > 0.
  PoissonArrivals(double rate_per_s, uint64_t seed);
  // Nanoseconds from the previous arrival to the next (>= 0).
  int64_t NextGapNs();

 private:
  std::mt19937_64 engine_;
  std::exponential_distribution<double> gap_s_;
};

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_ARRIVALS_H_
