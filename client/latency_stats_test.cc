#include "client/latency_stats.h"

#include <random>

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

TEST(NearestRankPercentile, OneToHundred) {
  std::vector<int64_t> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(NearestRankPercentile(v, 50), 50);
  EXPECT_EQ(NearestRankPercentile(v, 90), 90);
  EXPECT_EQ(NearestRankPercentile(v, 99), 99);
  EXPECT_EQ(NearestRankPercentile(v, 99.9), 100);
  EXPECT_EQ(NearestRankPercentile(v, 100), 100);
  EXPECT_EQ(NearestRankPercentile(v, 0), 1);
  EXPECT_EQ(NearestRankPercentile(v, 0.5), 1);
}

TEST(NearestRankPercentile, SingleValue) {
  std::vector<int64_t> v = {7};
  EXPECT_EQ(NearestRankPercentile(v, 1), 7);
  EXPECT_EQ(NearestRankPercentile(v, 99.9), 7);
}

TEST(NearestRankPercentile, ThousandValuesP999IsSecondLargest) {
  std::vector<int64_t> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(i);
  EXPECT_EQ(NearestRankPercentile(v, 99.9), 999);
  EXPECT_EQ(NearestRankPercentile(v, 50), 500);
}

TEST(SummarizeLatencies, OrderedAndInMicroseconds) {
  std::mt19937_64 rng(3);
  std::vector<int64_t> ns;
  for (int i = 0; i < 5000; ++i) ns.push_back(1000 + rng() % 5'000'000);
  LatencySummary s = SummarizeLatencies(ns);
  EXPECT_EQ(s.count, 5000);
  EXPECT_LE(s.min_us, s.p50_us);
  EXPECT_LE(s.p50_us, s.p90_us);
  EXPECT_LE(s.p90_us, s.p99_us);
  EXPECT_LE(s.p99_us, s.p999_us);
  EXPECT_LE(s.p999_us, s.max_us);
  EXPECT_GT(s.mean_us, s.min_us);
  EXPECT_LT(s.max_us, 5001.0 + 1);
}

TEST(SummarizeLatencies, EmptyIsZero) {
  std::vector<int64_t> none;
  LatencySummary s = SummarizeLatencies(none);
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.max_us, 0);
}

TEST(StatusCounts, TalliesAndNames) {
  StatusCounts c;
  c.Add(absl::StatusCode::kOk, 5);
  c.Add(absl::StatusCode::kUnavailable);
  c.Add(absl::StatusCode::kInvalidArgument, 2);
  EXPECT_EQ(c.total(), 8);
  EXPECT_EQ(c.ok(), 5);
  EXPECT_EQ(c.errors(), 3);
  EXPECT_EQ(c.ErrorsToString(), "INVALID_ARGUMENT=2 UNAVAILABLE=1");
  StatusCounts d;
  d.Add(absl::StatusCode::kOk);
  d.Merge(c);
  EXPECT_EQ(d.ok(), 6);
  EXPECT_EQ(d.ErrorsByName().at("UNAVAILABLE"), 1);
  EXPECT_EQ(StatusCounts().ErrorsToString(), "none");
}

}  // namespace
}  // namespace fusion::client
