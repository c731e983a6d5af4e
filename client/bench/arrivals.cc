#include "client/bench/arrivals.h"

namespace fusion::bench {

PoissonArrivals::PoissonArrivals(double rate_per_s, uint64_t seed)
    : engine_(seed), gap_s_(rate_per_s) {}

int64_t PoissonArrivals::NextGapNs() {
  return static_cast<int64_t>(gap_s_(engine_) * 1e9);
}

}  // namespace fusion::bench
