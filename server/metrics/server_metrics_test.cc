#include "server/metrics/server_metrics.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace fusion::metrics {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  return absl::StrContains(text, "\n" + line + "\n");
}

TEST(ServerMetricsTest, RecordsRequestsBatchesAndTokens) {
  ServerMetrics metrics;
  serving::ServingObserver* observer = metrics.ForModel("fusion", "1");
  EXPECT_EQ(observer, metrics.ForModel("fusion", "1"));
  observer->OnRequestStarted();
  observer->OnRequestStarted();
  observer->OnRequestFinished(absl::StatusCode::kOk, absl::Milliseconds(3),
                              absl::Milliseconds(1), absl::Milliseconds(2));
  observer->OnRequestFinished(absl::StatusCode::kInvalidArgument,
                              absl::Microseconds(50), absl::ZeroDuration(),
                              absl::ZeroDuration());
  observer->OnBatchComputed({/*size=*/2, /*real_tokens=*/30,
                             /*computed_tokens=*/40,
                             /*compute=*/absl::Milliseconds(4)});
  observer->OnForwardFailed(1);
  observer->OnForwardFailed(2);
  metrics.ForModel("fusion", "2");
  metrics.RecordUnroutedRequest(absl::StatusCode::kNotFound);
  metrics.SetModelLoaded("fusion", "1", 1.5, 0.5);
  metrics.RecordLoadFailure("fusion", "2");
  metrics.SetBuildInfo({"0.1.0", "abc", "1.13.0", "cpu", "Cooperlake", "bf16"});
  metrics.AddScrapeHook(
      [&metrics] { metrics.SetQueueDepth("fusion", "1", 1, 7); });

  const std::string text = metrics.Scrape();
  EXPECT_TRUE(HasLine(
      text, R"(fusion_requests_total{code="OK",model="fusion",version="1"} 1)"))
      << text;
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_requests_total{code="INVALID_ARGUMENT",model="fusion",version="1"} 1)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_model_warmup_duration_seconds{model="fusion",version="1"} 0.5)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_model_load_failures_total{model="fusion",version="2"} 1)"));
  EXPECT_TRUE(HasLine(
      text, R"(fusion_forward_failures_total{model="fusion",version="1"} 3)"))
      << text;
  // Present from the start, so that an alert on its rate has a series.
  EXPECT_TRUE(HasLine(
      text, R"(fusion_forward_failures_total{model="fusion",version="2"} 0)"));
  EXPECT_TRUE(
      HasLine(text, R"(fusion_model_ready{model="fusion",version="2"} 0)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_requests_total{code="NOT_FOUND",model="",version=""} 1)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_request_duration_seconds_count{model="fusion",version="1"} 2)"));
  // Queue and compute time are observed for computed requests only.
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_queue_duration_seconds_count{model="fusion",version="1"} 1)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_compute_duration_seconds_sum{model="fusion",version="1"} 0.002)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_batch_size_bucket{model="fusion",version="1",le="2"} 1)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_batch_duration_seconds_sum{model="fusion",version="1"} 0.004)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_tokens_total{kind="real",model="fusion",version="1"} 30)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_tokens_total{kind="padded",model="fusion",version="1"} 10)"));
  EXPECT_TRUE(HasLine(
      text, R"(fusion_inflight_requests{model="fusion",version="1"} 0)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_queue_depth{model="fusion",priority="1",version="1"} 7)"));
  EXPECT_TRUE(
      HasLine(text, R"(fusion_model_ready{model="fusion",version="1"} 1)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(fusion_build_info{blas_kernels="Cooperlake",device="cpu",git_sha="abc",precision="bf16",torch_version="1.13.0",version="0.1.0"} 1)"));
  EXPECT_TRUE(absl::StrContains(text, "\nprocess_resident_memory_bytes "));
  EXPECT_TRUE(absl::StrContains(text, "\nprocess_open_fds "));
  EXPECT_TRUE(absl::StrContains(text, "\nprocess_cpu_seconds_total "));
  EXPECT_TRUE(absl::StrContains(text, "\nprocess_start_time_seconds "));
}

TEST(ServerMetricsTest, DurationBucketsResolve100MicrosecondsTo10Seconds) {
  ServerMetrics metrics;
  metrics.ForModel("m", "2");
  const std::string text = metrics.Scrape();
  EXPECT_TRUE(absl::StrContains(
      text,
      R"(fusion_request_duration_seconds_bucket{model="m",version="2",le="0.0001"} 0)"));
  EXPECT_TRUE(absl::StrContains(
      text,
      R"(fusion_request_duration_seconds_bucket{model="m",version="2",le="10"} 0)"));
}

}  // namespace
}  // namespace fusion::metrics
