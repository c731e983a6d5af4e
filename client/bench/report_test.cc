#include "client/bench/report.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace fusion::bench {
namespace {

LevelResult Level(const std::string& protocol) {
  LevelResult r;
  r.protocol = protocol;
  r.spec.concurrency = 4;
  r.window_s = 2;
  r.throughput_rps = 100;
  r.stats.completed_in_window = 200;
  r.stats.mean_batch_size = 3.5;
  r.stats.window_codes.Add(absl::StatusCode::kOk);
  r.stats.all_codes.Add(absl::StatusCode::kOk);
  r.stats.all_codes.Add(absl::StatusCode::kNotFound);
  return r;
}

TEST(ReportJson, NativeOnlyKeepsTheSchema) {
  BenchConfig config;
  config.mode = "unary";
  const nlohmann::json j = ReportJson(config, {Level("native")});
  EXPECT_EQ(j["config"]["protocol"], "native");
  EXPECT_FALSE(j["config"].contains("server_timing"));
  EXPECT_FALSE(j["config"].contains("v2_contents"));
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["protocol"], "native");
  EXPECT_EQ(run["server"]["mean_batch_size"], 3.5);
  EXPECT_EQ(j["totals"]["requests"], 2);
  EXPECT_EQ(j["totals"]["ok"], 1);
}

TEST(ReportJson, V2RunsHaveNullServerTiming) {
  BenchConfig config;
  config.mode = "stream";
  config.protocol = "native,v2";
  config.v2_raw = true;
  const nlohmann::json j = ReportJson(config, {Level("native"), Level("v2")});
  EXPECT_EQ(j["config"]["protocol"], "native,v2");
  EXPECT_EQ(j["config"]["v2_contents"], "raw");
  ASSERT_TRUE(j["config"]["server_timing"].is_string());
  EXPECT_NE(j["config"]["server_timing"].get<std::string>().find("v2"),
            std::string::npos);
  ASSERT_EQ(j["runs"].size(), 2u);
  const auto& native = j["runs"][0];
  const auto& v2 = j["runs"][1];
  EXPECT_EQ(v2["protocol"], "v2");
  // The same keys in both runs; v2's server values are null.
  for (auto it = native.begin(); it != native.end(); ++it) {
    EXPECT_TRUE(v2.contains(it.key())) << it.key();
  }
  for (const char* key : {"mean_batch_size", "mean_queue_us", "mean_compute_us",
                          "mean_total_us"}) {
    EXPECT_TRUE(native["server"][key].is_number()) << key;
    EXPECT_TRUE(v2["server"][key].is_null()) << key;
  }
  EXPECT_EQ(v2["throughput_rps"], 100);
  EXPECT_EQ(j["totals"]["requests"], 4);
}

TEST(ReportJson, PhasesTimelineAndCodesOfABurst) {
  LevelResult r = Level("native");
  r.spec.open_loop = true;
  r.spec.rate = 100;
  r.stats.by_code["OK"].latency.count = 1;
  r.stats.by_code["OK"].latency.p99_us = 1500;
  r.stats.by_code["RESOURCE_EXHAUSTED"].service.p99_us = 800;
  PhaseResult burst;
  burst.phase = {1000, absl::Seconds(2)};
  burst.start_s = 5;
  burst.stats.codes.Add(absl::StatusCode::kOk, 3);
  burst.stats.codes.Add(absl::StatusCode::kResourceExhausted, 7);
  burst.ok_rps = 1.5;
  r.phases.push_back(burst);
  TimelinePoint empty, busy;
  busy.t_s = 0.1;
  busy.codes.Add(absl::StatusCode::kOk, 2);
  busy.ok_latency.count = 2;
  busy.ok_latency.p99_us = 2500;
  r.timeline = {empty, busy};
  BenchConfig config;
  config.rate_profile = "100:5s,1000:2s";
  config.timeline_s = 0.1;
  const nlohmann::json j = ReportJson(config, {r});
  EXPECT_EQ(j["config"]["rate_profile"], "100:5s,1000:2s");
  EXPECT_EQ(j["config"]["timeline_s"], 0.1);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["by_code"]["OK"]["latency_us"]["p99"], 1500);
  EXPECT_EQ(run["by_code"]["RESOURCE_EXHAUSTED"]["service_us"]["p99"], 800);
  ASSERT_EQ(run["phases"].size(), 1u);
  EXPECT_EQ(run["phases"][0]["rate"], 1000);
  EXPECT_EQ(run["phases"][0]["duration_s"], 2);
  EXPECT_EQ(run["phases"][0]["requests"], 10);
  EXPECT_EQ(run["phases"][0]["codes"]["OK"], 3);
  EXPECT_EQ(run["phases"][0]["codes"]["RESOURCE_EXHAUSTED"], 7);
  ASSERT_EQ(run["timeline"].size(), 2u);
  EXPECT_TRUE(run["timeline"][0]["ok_p99_us"].is_null());
  EXPECT_EQ(run["timeline"][1]["ok_p99_us"], 2500);
  EXPECT_EQ(run["timeline"][1]["codes"]["OK"], 2);
}

TEST(ReportJson, NoPhasesOrTimelineUnlessAsked) {
  const nlohmann::json j = ReportJson(BenchConfig{}, {Level("native")});
  EXPECT_FALSE(j["runs"][0].contains("phases"));
  EXPECT_FALSE(j["runs"][0].contains("timeline"));
  EXPECT_FALSE(j["config"].contains("rate_profile"));
  EXPECT_TRUE(j["runs"][0]["by_code"].is_object());
}

TEST(PrintTable, ShowsTheProtocolAndDashesForV2) {
  BenchConfig config;
  config.mode = "unary";
  config.protocol = "native,v2";
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  ASSERT_NE(out, nullptr);
  PrintTable(out, config, {Level("native"), Level("v2")});
  std::fclose(out);
  const std::string table(buffer, size);
  std::free(buffer);
  EXPECT_NE(table.find("protocol"), std::string::npos) << table;
  EXPECT_NE(table.find("native"), std::string::npos) << table;
  EXPECT_NE(table.find("   3.5 "), std::string::npos) << table;
  EXPECT_NE(table.find("     -         -         -"), std::string::npos)
      << table;
  EXPECT_NE(table.find("v2 responses carry none"), std::string::npos) << table;
}

}  // namespace
}  // namespace fusion::bench
