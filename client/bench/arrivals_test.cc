#include "client/bench/arrivals.h"

#include <string>

#include "gtest/gtest.h"

namespace fusion::bench {
namespace {

TEST(PoissonArrivals, MeanGapIsOneOverRate) {
  PoissonArrivals arrivals(1000.0, 42);
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double gap_ms = arrivals.NextGapNs() / 1e6;
    ASSERT_GE(gap_ms, 0);
    sum += gap_ms;
    sum_sq += gap_ms * gap_ms;
  }
  const double mean = sum / n;
  const double variance = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 1.0, 0.02);      // 1 ms at 1000/s
  EXPECT_NEAR(variance, 1.0, 0.05);  // exponential: variance = mean^2
}

TEST(PoissonArrivals, SameSeedSameSchedule) {
  PoissonArrivals a(50, 7), b(50, 7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.NextGapNs(), b.NextGapNs());
}

TEST(PoissonArrivals, StepsChangeTheRateAtTheirTimes) {
  // 1000/s for 2 s, 20000/s for 1 s, then 1000/s again.
  PoissonArrivals arrivals(
      {{0, 1000.0}, {2'000'000'000, 20000.0}, {3'000'000'000, 1000.0}}, 11);
  int64_t t = 0;
  int counts[4] = {0, 0, 0, 0};  // [0,2) s, [2,3) s, [3,5) s, later
  while (t < 5'000'000'000) {
    const int64_t gap = arrivals.NextGapNs();
    ASSERT_GE(gap, 0);
    t += gap;
    const int segment = t < 2'000'000'000   ? 0
                        : t < 3'000'000'000 ? 1
                        : t < 5'000'000'000 ? 2
                                            : 3;
    ++counts[segment];
  }
  // Poisson counts: mean rate x time, standard deviation its square root.
  EXPECT_NEAR(counts[0], 2000, 5 * 45);
  EXPECT_NEAR(counts[1], 20000, 5 * 142);
  EXPECT_NEAR(counts[2], 2000, 5 * 45);
}

TEST(PoissonArrivals, OneStepIsTheConstantRate) {
  PoissonArrivals constant(300, 5), stepped({{0, 300}}, 5);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(constant.NextGapNs(), stepped.NextGapNs());
  }
}

TEST(ParseRateProfile, ReadsRatesAndDurations) {
  auto phases = ParseRateProfile("1000:5s,12500.5:1m,800:250ms");
  ASSERT_TRUE(phases.ok()) << phases.status();
  ASSERT_EQ(phases->size(), 3u);
  EXPECT_DOUBLE_EQ((*phases)[0].rate, 1000);
  EXPECT_EQ((*phases)[0].duration, absl::Seconds(5));
  EXPECT_DOUBLE_EQ((*phases)[1].rate, 12500.5);
  EXPECT_EQ((*phases)[1].duration, absl::Minutes(1));
  EXPECT_EQ((*phases)[2].duration, absl::Milliseconds(250));
}

TEST(ParseRateProfile, RejectsBadPhasesByName) {
  for (const char* bad :
       {"", "1000", "1000:", ":5s", "0:5s", "-3:5s", "1000:0s", "1000:-1s",
        "1000:inf", "x:5s", "1000:5", "1000:5s,", "1000:5s:1", "inf:5s"}) {
    auto phases = ParseRateProfile(bad);
    EXPECT_EQ(phases.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_NE(ParseRateProfile("100:1s,7:0s").status().message().find("'7:0s'"),
            std::string::npos);
}

}  // namespace
}  // namespace fusion::bench
