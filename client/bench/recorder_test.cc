#include "client/bench/recorder.h"

#include "gtest/gtest.h"

namespace fusion::bench {
namespace {

Outcome At(int64_t intended_ms, int64_t end_ms,
           absl::StatusCode code = absl::StatusCode::kOk, int batch = 4) {
  Outcome o;
  o.intended_ns = intended_ms * 1'000'000;
  o.sent_ns = o.intended_ns + 1000;  // 1 us late
  o.end_ns = end_ms * 1'000'000;
  o.code = code;
  o.batch_size = batch;
  o.queue_us = 100;
  o.compute_us = 200;
  return o;
}

TEST(Recorder, WindowByIntendedTimeThroughputByEndTime) {
  Recorder r(/*start=*/1000'000'000, /*end=*/2000'000'000);  // 1 s .. 2 s
  r.Record(At(500, 1100));   // warmup: not in latency, ends in window
  r.Record(At(1200, 1210));  // in window, 10 ms
  r.Record(At(1300, 1330, absl::StatusCode::kResourceExhausted));
  r.Record(At(1990, 2050, absl::StatusCode::kOk, 8));  // ends after window
  r.Record(At(2100, 2110));                            // drain
  LevelStats s = r.Summarize();
  EXPECT_EQ(s.all_codes.total(), 5);
  EXPECT_EQ(s.window_codes.total(), 3);
  EXPECT_EQ(s.window_codes.errors(), 1);
  EXPECT_EQ(s.completed_in_window, 3);  // 1100, 1210, 1330
  EXPECT_EQ(s.latency.count, 3);
  EXPECT_DOUBLE_EQ(s.latency.min_us, 10'000);
  EXPECT_DOUBLE_EQ(s.latency.max_us, 60'000);
  EXPECT_DOUBLE_EQ(s.mean_batch_size, 6);  // OK ones: 4 and 8
  EXPECT_DOUBLE_EQ(s.mean_queue_us, 100);
  EXPECT_DOUBLE_EQ(s.mean_send_lag_us, 1);
}

}  // namespace
}  // namespace fusion::bench
