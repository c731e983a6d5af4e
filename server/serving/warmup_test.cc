#include "server/serving/warmup.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "google/protobuf/text_format.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"

namespace fusion::serving {
namespace {

fusion::v1::ModelConfig Config(const std::string& extra) {
  fusion::v1::ModelConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "m"
           version: 1
           classes: "a"
           classes: "b"
           max_tokens: 100
           attention_heads: 2
           features { name: "x" })pb" +
          extra,
      &config));
  auto normalized = runtime::NormalizeConfig(config);
  EXPECT_TRUE(normalized.ok()) << normalized.status();
  return *normalized;
}

TEST(WarmupTest, ShapesCoverEveryBucketAtEveryServedBatchSize) {
  const auto config = Config(R"pb(batching {
                                    max_batch_size: 24
                                    preferred_batch_sizes: 12
                                    length_bucket_edges: [ 16, 64, 128 ]
                                  })pb");
  std::set<std::pair<int, int>> shapes;
  for (const WarmupShape& s : WarmupShapes(config)) {
    shapes.insert({s.requests, s.tokens});
  }
  std::set<std::pair<int, int>> expected;
  for (int tokens : {16, 64, 100}) {  // 128 is capped at max_tokens
    for (int requests : {1, 2, 4, 8, 12, 16, 24}) {
      expected.insert({requests, tokens});
    }
  }
  EXPECT_EQ(shapes, expected);
}

// UBSan in tests/fuzz/model_config_fuzzer: signed overflow while doubling
// the batch size (input: crash-warmup-shapes-max-batch-int-max).
TEST(WarmupTest, ShapesOfTheLargestMaxBatchSizeAreThePowersOfTwoAndIt) {
  const auto config = Config("batching { max_batch_size: 2147483647 }");
  std::set<int> sizes;
  for (const WarmupShape& s : WarmupShapes(config)) sizes.insert(s.requests);
  std::set<int> expected = {2147483647};
  for (int i = 0; i <= 30; ++i) expected.insert(1 << i);
  EXPECT_EQ(sizes, expected);
}

TEST(WarmupTest, RunsEachShapeOncePerIterationAndCanBeTurnedOff) {
  auto tokenizer =
      text::WordPieceTokenizer::Create({"[PAD]", "[UNK]", "[CLS]", "[SEP]"});
  ASSERT_TRUE(tokenizer.ok());
  runtime::FakeModelRuntime fake;
  auto config = Config(R"pb(batching {
                              max_batch_size: 4
                              length_bucket_edges: [ 8 ]
                            }
                            runtime { warmup_iterations: 2 })pb");
  auto time = WarmUp(fake, **tokenizer, config);
  ASSERT_TRUE(time.ok()) << time.status();
  // Sizes 1, 2, 4 at lengths 8 and 100, twice.
  EXPECT_EQ(fake.batch_sizes(),
            (std::vector<int>{1, 2, 4, 1, 2, 4, 1, 2, 4, 1, 2, 4}));

  runtime::FakeModelRuntime untouched;
  config.mutable_runtime()->set_warmup_iterations(0);
  ASSERT_TRUE(WarmUp(untouched, **tokenizer, config).ok());
  EXPECT_TRUE(untouched.batch_sizes().empty());
}

TEST(WarmupTest, AFailingForwardFailsTheWarmUp) {
  auto tokenizer =
      text::WordPieceTokenizer::Create({"[PAD]", "[UNK]", "[CLS]", "[SEP]"});
  ASSERT_TRUE(tokenizer.ok());
  runtime::FakeModelRuntime fake;
  fake.FailNextBatch(absl::InternalError("boom"));
  auto time = WarmUp(fake, **tokenizer, Config(""));
  EXPECT_EQ(time.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(time.status().message().find("warm-up batch"), std::string::npos);
}

}  // namespace
}  // namespace fusion::serving
