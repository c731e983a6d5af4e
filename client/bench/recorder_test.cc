#include "client/bench/recorder.h"

#include <vector>

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

TEST(Recorder, KeepsEachCodesLatencyApartFromIntendedAndFromSend) {
  Recorder r(0, 10'000'000'000);
  Outcome ok = At(100, 150);  // 50 ms
  Outcome refused = At(200, 201, absl::StatusCode::kResourceExhausted);
  refused.sent_ns = refused.intended_ns + 600'000;  // the generator lagged
  r.Record(ok);
  r.Record(refused);
  r.Record(At(300, 302, absl::StatusCode::kResourceExhausted));
  LevelStats s = r.Summarize();
  ASSERT_EQ(s.by_code.size(), 2u);
  EXPECT_EQ(s.by_code["OK"].latency.count, 1);
  EXPECT_DOUBLE_EQ(s.by_code["OK"].latency.max_us, 50'000);
  const CodeLatency& no = s.by_code["RESOURCE_EXHAUSTED"];
  EXPECT_EQ(no.latency.count, 2);
  EXPECT_DOUBLE_EQ(no.latency.min_us, 1'000);  // from intended
  EXPECT_DOUBLE_EQ(no.service.min_us, 400);    // from the hand-over
  EXPECT_DOUBLE_EQ(no.service.max_us, 1'999);  // 2 ms - 1 us
  EXPECT_EQ(s.latency.count, 3);
}

TEST(Recorder, SpansAndTimelineCutTheWindowByIntendedTime) {
  Recorder r(1000'000'000, 2000'000'000);  // 1 s .. 2 s
  r.Record(At(900, 905));                  // warmup: in neither
  for (int ms = 1000; ms < 1300; ms += 10) r.Record(At(ms, ms + 2));
  r.Record(At(1350, 1360, absl::StatusCode::kResourceExhausted));
  r.Record(At(1420, 1520));  // a slow one in the fifth slice

  SpanStats first = r.SummarizeSpan(900'000'000, 1100'000'000);  // clipped
  EXPECT_EQ(first.codes.total(), 10);
  EXPECT_DOUBLE_EQ(first.latency.max_us, 2'000);
  SpanStats later = r.SummarizeSpan(1300'000'000, 1500'000'000);
  EXPECT_EQ(later.codes.total(), 2);
  EXPECT_EQ(later.codes.errors(), 1);
  EXPECT_EQ(later.by_code.count("RESOURCE_EXHAUSTED"), 1u);

  std::vector<TimelinePoint> t = r.Timeline(100'000'000, true);  // 100 ms
  ASSERT_EQ(t.size(), 10u);
  EXPECT_DOUBLE_EQ(t[0].t_s, 0);
  EXPECT_DOUBLE_EQ(t[4].t_s, 0.4);
  EXPECT_EQ(t[0].codes.total(), 10);
  EXPECT_DOUBLE_EQ(t[0].ok_latency.p99_us, 2'000);
  EXPECT_EQ(t[3].codes.total(), 1);  // the refusal only
  EXPECT_EQ(t[3].ok_latency.count, 0);
  EXPECT_DOUBLE_EQ(t[4].ok_latency.p99_us, 100'000);
  EXPECT_EQ(t[4].ok_latencies_us, std::vector<int64_t>{100'000});
  EXPECT_EQ(t[0].ok_latencies_us.size(), 10u);
  EXPECT_TRUE(r.Timeline(100'000'000, false)[0].ok_latencies_us.empty());
  EXPECT_EQ(t[9].codes.total(), 0);
  // The summary does not depend on the order the timeline left.
  EXPECT_EQ(r.Summarize().latency.count, 32);
}

}  // namespace
}  // namespace fusion::bench
