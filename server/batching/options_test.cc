#include "server/batching/options.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace fusion::batching {
namespace {

TEST(OptionsTest, DefaultsAreValid) {
  const BatchSchedulerOptions o;
  EXPECT_TRUE(ValidateOptions(o).ok());
  EXPECT_EQ(o.max_batch_size, 64);
  EXPECT_EQ(o.max_queue_delay, absl::ZeroDuration());
  EXPECT_EQ(o.length_bucket_edges, (std::vector<int>{16, 32, 64, 128}));
  EXPECT_EQ(o.priority_levels, 2);
  EXPECT_EQ(o.max_queue_size, 1024);
  EXPECT_EQ(o.num_executors, 1);
  EXPECT_TRUE(o.drain_on_shutdown);
}

TEST(OptionsTest, AcceptsEdgeSettings) {
  BatchSchedulerOptions o;
  o.max_queue_delay = absl::ZeroDuration();
  o.length_bucket_edges.clear();
  o.preferred_batch_sizes = {64, 1, 8, 8};
  o.starvation_age = absl::InfiniteDuration();
  o.priority_levels = 1;
  EXPECT_TRUE(ValidateOptions(o).ok());
}

TEST(OptionsTest, RejectsEachBadField) {
  struct Case {
    std::string field;
    std::function<void(BatchSchedulerOptions&)> spoil;
  };
  const std::vector<Case> cases = {
      {"max_batch_size", [](auto& o) { o.max_batch_size = 0; }},
      {"max_queue_delay",
       [](auto& o) { o.max_queue_delay = -absl::Microseconds(1); }},
      {"max_queue_delay",
       [](auto& o) { o.max_queue_delay = absl::InfiniteDuration(); }},
      {"preferred batch size", [](auto& o) { o.preferred_batch_sizes = {65}; }},
      {"preferred batch size", [](auto& o) { o.preferred_batch_sizes = {0}; }},
      {"length_bucket_edges",
       [](auto& o) {
         o.length_bucket_edges = {8, 8};
       }},
      {"length_bucket_edges",
       [](auto& o) {
         o.length_bucket_edges = {0, 8};
       }},
      {"length_bucket_edges",
       [](auto& o) { o.length_bucket_edges = std::vector<int>(64, 1); }},
      {"priority_levels", [](auto& o) { o.priority_levels = 0; }},
      {"priority_levels", [](auto& o) { o.priority_levels = 65; }},
      {"starvation_age",
       [](auto& o) { o.starvation_age = absl::ZeroDuration(); }},
      {"max_queue_size", [](auto& o) { o.max_queue_size = 0; }},
      {"bucket_max_batch_sizes",
       [](auto& o) {
         o.bucket_max_batch_sizes = {1, 2};
       }},
      {"bucket_max_batch_sizes",
       [](auto& o) {
         o.bucket_max_batch_sizes = {1, 2, 3, 4, 65};
       }},
      {"bucket_max_batch_sizes",
       [](auto& o) {
         o.bucket_max_batch_sizes = {1, 2, 0, 4, 5};
       }},
      {"max_queue_wait",
       [](auto& o) { o.max_queue_wait = absl::ZeroDuration(); }},
      {"merge_cost_tokens", [](auto& o) { o.merge_cost_tokens = -1; }},
      {"merge_cost_tokens",
       [](auto& o) { o.merge_cost_tokens = std::nan(""); }},
      {"num_executors", [](auto& o) { o.num_executors = 0; }},
      {"sweep_interval",
       [](auto& o) { o.sweep_interval = absl::ZeroDuration(); }},
  };
  for (const Case& c : cases) {
    BatchSchedulerOptions o;
    c.spoil(o);
    const absl::Status status = ValidateOptions(o);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.field;
    EXPECT_NE(status.message().find(c.field), std::string::npos)
        << c.field << ": " << status;
  }
}

}  // namespace
}  // namespace fusion::batching
