#include "client/bench/workload.h"

#include "gtest/gtest.h"

namespace fusion::bench {
namespace {

TEST(ParseLengthDistribution, Forms) {
  auto fixed = ParseLengthDistribution("fixed:32");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->kind, LengthDistribution::Kind::kFixed);
  EXPECT_EQ(fixed->a, 32);
  auto uniform = ParseLengthDistribution("uniform:8:64");
  ASSERT_TRUE(uniform.ok());
  EXPECT_EQ(uniform->b, 64);
  EXPECT_TRUE(ParseLengthDistribution("normal:40:10").ok());
  EXPECT_FALSE(ParseLengthDistribution("poisson:3").ok());
  EXPECT_FALSE(ParseLengthDistribution("fixed").ok());
  EXPECT_FALSE(ParseLengthDistribution("uniform:9:3").ok());
  EXPECT_FALSE(ParseLengthDistribution("fixed:x").ok());
  EXPECT_FALSE(ParseLengthDistribution("normal:5").ok());
}

TEST(SampleLength, StaysInBounds) {
  std::mt19937_64 rng(1);
  auto uniform = *ParseLengthDistribution("uniform:8:12");
  auto normal = *ParseLengthDistribution("normal:100:80");
  bool saw_min = false, saw_max = false;
  for (int i = 0; i < 2000; ++i) {
    const int u = SampleLength(uniform, rng, 2, 128);
    EXPECT_GE(u, 8);
    EXPECT_LE(u, 12);
    saw_min |= u == 8;
    saw_max |= u == 12;
    const int n = SampleLength(normal, rng, 2, 128);
    EXPECT_GE(n, 2);
    EXPECT_LE(n, 128);
  }
  EXPECT_TRUE(saw_min && saw_max);
}

fusion::v1::ModelMetadata Metadata() {
  fusion::v1::ModelMetadata m;
  m.set_vocab_size(100);
  m.set_max_tokens(16);
  for (int i = 0; i < 3; ++i) {
    auto* f = m.add_features();
    f->set_name("f" + std::to_string(i));
    f->set_mean(10);
    f->set_std(2);
  }
  return m;
}

TEST(Workload, SyntheticRequestsAreWellFormed) {
  SyntheticSpec spec;
  spec.lengths = *ParseLengthDistribution("uniform:4:40");
  spec.count = 50;
  auto w = Workload::Synthetic(spec, Metadata());
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->size(), 50u);
  for (size_t i = 0; i < w->size(); ++i) {
    const auto& r = w->Get(i, false);
    ASSERT_GE(r.token_ids_size(), 4);
    ASSERT_LE(r.token_ids_size(), 16);  // clamped to max_tokens
    EXPECT_EQ(r.token_ids(0), 2);
    EXPECT_EQ(r.token_ids(r.token_ids_size() - 1), 3);
    for (int t = 1; t + 1 < r.token_ids_size(); ++t) {
      EXPECT_GE(r.token_ids(t), 5);
      EXPECT_LT(r.token_ids(t), 100);
    }
    EXPECT_EQ(r.feature_vector_size(), 3);
    EXPECT_EQ(r.attention(), fusion::v1::ATTENTION_NONE);
    EXPECT_EQ(w->Get(i, true).attention(), fusion::v1::ATTENTION_MEAN);
  }
  fusion::v1::ModelMetadata empty;
  EXPECT_FALSE(Workload::Synthetic(spec, empty).ok());
}

TEST(Workload, FromGoldenFile) {
  auto w = Workload::FromJsonLines(std::string(FUSION_SOURCE_DIR) +
                                   "/models/fusion/1/golden.jsonl");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_GT(w->size(), 0u);
  EXPECT_TRUE(w->Get(0, false).has_text());
  w->SetModel("fusion", "1");
  EXPECT_EQ(w->Get(0, true).model(), "fusion");
  EXPECT_EQ(w->Get(0, false).model_version(), "1");
  EXPECT_EQ(Workload::FromJsonLines("/nonexistent.jsonl").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Workload, ConvertToV2KeepsThePool) {
  fusion::v1::ModelMetadata metadata = Metadata();
  metadata.set_name("fusion");
  SyntheticSpec spec;
  spec.lengths = *ParseLengthDistribution("fixed:6");
  spec.count = 5;
  auto w = Workload::Synthetic(spec, metadata);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_FALSE(w->has_v2());
  EXPECT_EQ(w->Item(0, false).v2, nullptr);
  ASSERT_TRUE(
      w->ConvertToV2(client::V2ModelInfoFromMetadata(metadata), {}).ok());
  ASSERT_TRUE(w->has_v2());
  for (size_t i = 0; i < w->size(); ++i) {
    for (bool attention : {false, true}) {
      const WorkItem item = w->Item(i, attention);
      ASSERT_NE(item.v2, nullptr);
      EXPECT_EQ(item.native, &w->Get(i, attention));
      EXPECT_EQ(item.v2->model_name(), "fusion");
      EXPECT_EQ(item.v2->id(), item.native->request_id());
      ASSERT_EQ(item.v2->inputs_size(), 2);
      EXPECT_EQ(item.v2->inputs(0).name(), "INPUT_IDS");
      EXPECT_EQ(item.v2->inputs(0).shape(1), 6);
      EXPECT_EQ(item.v2->inputs(1).name(), "FEATURES");
      EXPECT_EQ(item.v2->inputs(1).contents().fp32_contents(2),
                item.native->feature_vector(2));
      EXPECT_EQ(item.v2->outputs_size(), attention ? 5 : 0);
    }
  }
  // Raw contents.
  ASSERT_TRUE(
      w->ConvertToV2(client::V2ModelInfoFromMetadata(metadata), {true}).ok());
  EXPECT_EQ(w->Item(0, false).v2->raw_input_contents_size(), 2);
  EXPECT_EQ(w->Item(0, false).v2->raw_input_contents(0).size(), 6u * 8);
}

TEST(Workload, ConvertToV2NamesTheBadRequest) {
  auto w = Workload::FromJsonLines(std::string(FUSION_SOURCE_DIR) +
                                   "/models/fusion/1/golden.jsonl");
  ASSERT_TRUE(w.ok()) << w.status();
  // A feature order that lacks the golden requests' features.
  const absl::Status s =
      w->ConvertToV2(client::V2ModelInfoFromNames("fusion", {"other"}), {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("request 1 "), std::string::npos) << s;
  EXPECT_FALSE(w->has_v2());
}

}  // namespace
}  // namespace fusion::bench
