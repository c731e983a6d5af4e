#include "client/bench/arrivals.h"

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

}  // namespace
}  // namespace fusion::bench
