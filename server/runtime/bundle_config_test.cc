#include "server/runtime/bundle_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "google/protobuf/text_format.h"

namespace fusion::runtime {
namespace {

fusion::v1::ModelConfig Parse(const std::string& text) {
  fusion::v1::ModelConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config));
  return config;
}

constexpr char kMinimal[] = R"pb(
  name: "m"
  version: 1
  classes: "a"
  classes: "b"
  positive_class: 1
  max_tokens: 32
  attention_heads: 2
  features { name: "x" }
  features { name: "y" }
)pb";

TEST(BundleConfigTest, DefaultBundleLoadsWithItsSettings) {
  auto config = LoadBundleConfig(FUSION_SOURCE_DIR "/models/fusion/1");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name(), "fusion");
  EXPECT_EQ(config->version(), 1);
  EXPECT_EQ(config->classes_size(), 2);
  EXPECT_GT(config->features_size(), 0);
  EXPECT_EQ(config->tokenizer().vocab_file(), "vocab.txt");
  EXPECT_EQ(config->batching().max_batch_size(), 64);
}

TEST(BundleConfigTest, FillsDefaults) {
  auto config = NormalizeConfig(Parse(kMinimal));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->platform(), "torchscript");
  EXPECT_EQ(config->model_file(), "model.pt");
  EXPECT_EQ(config->batching().max_batch_size(), 64);
  EXPECT_EQ(config->batching().max_queue_delay_us(), 0);
  EXPECT_EQ(config->batching().length_bucket_edges_size(), 4);
  EXPECT_EQ(config->batching().max_queue_size(), 1024);
  EXPECT_EQ(config->batching().priority_levels(), 2);
  // Left for the load to choose, once the device is known (PlanThreads).
  EXPECT_EQ(config->batching().instance_count(), 0);
  EXPECT_EQ(config->tokenizer().unk_token(), "[UNK]");
  EXPECT_EQ(config->max_message_bytes(), 4 << 20);
}

TEST(BundleConfigTest, RejectsInconsistentConfigs) {
  using Mutation = void (*)(fusion::v1::ModelConfig&);
  const std::pair<Mutation, std::string> cases[] = {
      {[](auto& c) { c.add_features()->set_name("x"); },
       "duplicate feature 'x'"},
      {[](auto& c) { c.set_positive_class(5); }, "positive_class"},
      {[](auto& c) { c.mutable_batching()->add_preferred_batch_sizes(100); },
       "preferred_batch_sizes"},
      {[](auto& c) {
         c.mutable_batching()->add_length_bucket_edges(8);
         c.mutable_batching()->add_length_bucket_edges(4);
       },
       "length_bucket_edges"},
      {[](auto& c) { c.mutable_batching()->set_merge_cost_tokens(-1); },
       "merge_cost_tokens"},
      {[](auto& c) { c.mutable_batching()->set_instance_count(-1); },
       "instance_count must be >= 0"},
      {[](auto& c) { c.set_platform("onnx"); }, "unsupported platform"},
      {[](auto& c) { c.clear_features(); }, "no features"},
  };
  for (const auto& [mutate, message] : cases) {
    fusion::v1::ModelConfig config = Parse(kMinimal);
    mutate(config);
    auto normalized = NormalizeConfig(config);
    ASSERT_FALSE(normalized.ok()) << message;
    EXPECT_EQ(normalized.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(normalized.status().message().find(message), std::string::npos)
        << normalized.status();
  }
}

TEST(BundleConfigTest, OverridesApplyBeforeTheOneValidation) {
  BatchingOverrides overrides;
  overrides.max_batch_size = 8;
  overrides.instance_count = 3;
  overrides.max_queue_delay_us = 0;
  auto config = NormalizeConfig(Parse(kMinimal), overrides);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->batching().max_batch_size(), 8);
  EXPECT_EQ(config->batching().instance_count(), 3);
  // A valid override that makes the config inconsistent fails its check.
  fusion::v1::ModelConfig preferring_16 = Parse(kMinimal);
  preferring_16.mutable_batching()->add_preferred_batch_sizes(16);
  auto inconsistent = NormalizeConfig(preferring_16, overrides);
  EXPECT_EQ(inconsistent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(inconsistent.status().message().find("preferred_batch_sizes"),
            std::string::npos);
}

TEST(BundleConfigTest, OverridesThatCanNeverBeValidNameTheFlag) {
  EXPECT_TRUE(ValidateOverrides({}).ok());
  BatchingOverrides negative_batch;
  negative_batch.max_batch_size = -4;
  EXPECT_EQ(ValidateOverrides(negative_batch).message(),
            "--max_batch_size must be >= 1");
  BatchingOverrides zero_queue;
  zero_queue.max_queue_size = 0;
  EXPECT_EQ(ValidateOverrides(zero_queue).message(),
            "--max_queue_size must be >= 1");
  BatchingOverrides negative_delay;
  negative_delay.max_queue_delay_us = -1;
  EXPECT_EQ(ValidateOverrides(negative_delay).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BundleConfigTest, WarmupDefaultsToOneRoundAndZeroTurnsItOff) {
  auto defaulted = NormalizeConfig(Parse(kMinimal));
  ASSERT_TRUE(defaulted.ok());
  EXPECT_EQ(defaulted->runtime().warmup_iterations(), 1);
  fusion::v1::ModelConfig off = Parse(kMinimal);
  off.mutable_runtime()->set_warmup_iterations(0);
  auto normalized = NormalizeConfig(off);
  ASSERT_TRUE(normalized.ok());
  EXPECT_EQ(normalized->runtime().warmup_iterations(), 0);
}

TEST(BundleConfigTest, MissingBundleIsNotFound) {
  auto config = LoadBundleConfig("/nonexistent/bundle");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
}

TEST(BundleConfigTest, ASyntaxErrorNamesTheFileLineAndColumn) {
  const std::string dir = ::testing::TempDir() + "/bundle_config_syntax";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.pbtxt")
      << "name: \"m\"\nversion: 1\nmax_tokens: twelve\n";
  auto config = LoadBundleConfig(dir);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(dir + "/config.pbtxt:3:13: "),
            std::string::npos)
      << config.status();
  EXPECT_NE(config.status().message().find("twelve"), std::string::npos)
      << config.status();
  std::ofstream(dir + "/config.pbtxt") << "name: \"m\"\nno_such_field: 1\n";
  config = LoadBundleConfig(dir);
  EXPECT_NE(config.status().message().find("config.pbtxt:2:"),
            std::string::npos)
      << config.status();
  EXPECT_NE(config.status().message().find("no_such_field"), std::string::npos)
      << config.status();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fusion::runtime
