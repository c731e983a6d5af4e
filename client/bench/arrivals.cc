#include "client/bench/arrivals.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fusion::bench {

absl::StatusOr<std::vector<RatePhase>> ParseRateProfile(
    absl::string_view spec) {
  std::vector<RatePhase> phases;
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    const std::vector<absl::string_view> fields = absl::StrSplit(part, ':');
    RatePhase phase;
    if (fields.size() != 2 || !absl::SimpleAtod(fields[0], &phase.rate) ||
        !(phase.rate > 0) || phase.rate == HUGE_VAL ||
        !absl::ParseDuration(fields[1], &phase.duration) ||
        phase.duration <= absl::ZeroDuration() ||
        phase.duration == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rate profile phase '", part,
                       "': expected RATE:DURATION with a rate > 0 and a "
                       "finite duration > 0, e.g. 1000:5s"));
    }
    phases.push_back(phase);
  }
  return phases;
}

PoissonArrivals::PoissonArrivals(double rate_per_s, uint64_t seed)
    : PoissonArrivals(std::vector<Step>{{0, rate_per_s}}, seed) {}

PoissonArrivals::PoissonArrivals(std::vector<Step> steps, uint64_t seed)
    : engine_(seed), steps_(std::move(steps)), gap_s_(steps_[0].rate_per_s) {}

int64_t PoissonArrivals::NextGapNs() {
  const int64_t previous = now_ns_;
  int64_t at = now_ns_;
  while (true) {
    const int64_t gap = static_cast<int64_t>(gap_s_(engine_) * 1e9);
    if (step_ + 1 < steps_.size() && at + gap >= steps_[step_ + 1].from_ns) {
      at = steps_[++step_].from_ns;
      gap_s_ = std::exponential_distribution<double>(steps_[step_].rate_per_s);
      continue;
    }
    now_ns_ = at + gap;
    return now_ns_ - previous;
  }
}

}  // namespace fusion::bench
