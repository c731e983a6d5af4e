// The precision policy and the golden file, without Torch.
#include "server/runtime/precision.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "server/runtime/golden_file.h"

namespace fusion::runtime {
namespace {

using fusion::v1::RuntimeConfig;

TEST(ParsePrecision, TakesTheThreeNamesInAnyCase) {
  EXPECT_EQ(*ParsePrecision("auto"), RuntimeConfig::PRECISION_AUTO);
  EXPECT_EQ(*ParsePrecision("fp32"), RuntimeConfig::PRECISION_FP32);
  EXPECT_EQ(*ParsePrecision("BF16"), RuntimeConfig::PRECISION_BF16);
}

TEST(ParsePrecision, RejectsAnythingElseNamingIt) {
  for (const char* bad : {"", "fp16", "bfloat16", "PRECISION_BF16", "bf16 "}) {
    auto parsed = ParsePrecision(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("auto, fp32 or bf16"),
              std::string::npos);
  }
}

TEST(DecidePrecision, ExplicitChoicesAreKeptEverywhere) {
  for (bool cuda : {false, true}) {
    for (bool native : {false, true}) {
      for (bool golden : {false, true}) {
        EXPECT_EQ(
            DecidePrecision(RuntimeConfig::PRECISION_FP32, cuda, native, golden)
                .use,
            Bf16Use::kNever);
        // A missing golden file fails the load later, it is not ignored.
        EXPECT_EQ(
            DecidePrecision(RuntimeConfig::PRECISION_BF16, cuda, native, golden)
                .use,
            Bf16Use::kEveryBatch);
      }
    }
  }
}

TEST(DecidePrecision, AutoTriesBf16OnlyOnANativeCpuWithGoldenAnswers) {
  const auto kAuto = RuntimeConfig::PRECISION_AUTO;
  EXPECT_EQ(DecidePrecision(kAuto, false, true, true).use,
            Bf16Use::kLargeBatches);
  EXPECT_EQ(DecidePrecision(kAuto, /*cuda=*/true, true, true).use,
            Bf16Use::kNever);
  EXPECT_EQ(DecidePrecision(kAuto, false, /*native_bf16=*/false, true).use,
            Bf16Use::kNever);
  EXPECT_EQ(DecidePrecision(kAuto, false, true, /*golden_available=*/false).use,
            Bf16Use::kNever);
  EXPECT_NE(DecidePrecision(kAuto, false, false, true).reason.find("natively"),
            std::string::npos);
}

TEST(Bf16MinPositions, InterpolatesBetweenTheLastLossAndTheFirstWin) {
  // As measured here: bf16/fp32 1.035 at 64 positions, 0.75 at 128; 0.95 is
  // crossed 30% of the way in log(size): 64 x 2^0.298 = 78.8.
  EXPECT_EQ(Bf16MinPositions({{16, 1.0, 1.25},
                              {64, 1.0, 1.035},
                              {128, 1.0, 0.75},
                              {1024, 1.0, 0.49}}),
            79);
  // Input order does not matter.
  EXPECT_EQ(Bf16MinPositions({{1024, 1.0, 0.49},
                              {128, 1.0, 0.75},
                              {16, 1.0, 1.25},
                              {64, 1.0, 1.035}}),
            79);
  // A loss right at the target puts the crossover just above it; a loss
  // far above it, just below the win.
  EXPECT_EQ(Bf16MinPositions({{64, 1.0, 0.95}, {128, 1.0, 0.75}}), 65);
  EXPECT_EQ(Bf16MinPositions({{64, 1.0, 100.0}, {128, 1.0, 0.75}}), 128);
}

TEST(Bf16MinPositions, ALossAboveAWinMovesTheCrossoverUp) {
  EXPECT_EQ(
      Bf16MinPositions({{64, 1.0, 0.8}, {256, 1.0, 0.95}, {1024, 1.0, 0.7}}),
      256 + 1);
}

TEST(Bf16MinPositions, AGainUnderFivePercentIsNoWin) {
  EXPECT_EQ(Bf16MinPositions({{256, 1.0, 0.9}, {1024, 1.0, 0.96}}),
            std::nullopt);
}

TEST(Bf16MinPositions, EveryWinStartsAtTheSmallest) {
  EXPECT_EQ(Bf16MinPositions({{16, 1.0, 0.5}, {64, 1.0, 0.5}}), 16);
}

TEST(Bf16MinPositions, NothingMeasuredOrNoWinIsNever) {
  EXPECT_EQ(Bf16MinPositions({}), std::nullopt);
  EXPECT_EQ(Bf16MinPositions({{16, 1.0, 1.5}, {1024, 1.0, 1.01}}),
            std::nullopt);
}

TEST(CrossoverShapes, DoubleTheRequestsThenLengthenThem) {
  std::vector<std::pair<int, int>> got;
  for (const CrossoverShape& s : CrossoverShapes(128, 64)) {
    got.push_back({s.requests, s.tokens});
  }
  EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{1, 16},
                                                   {2, 16},
                                                   {4, 16},
                                                   {8, 16},
                                                   {16, 16},
                                                   {32, 16},
                                                   {64, 16},
                                                   {64, 32}}));
  // A short model and one-request batches still give a shape.
  ASSERT_EQ(CrossoverShapes(8, 1).size(), 1u);
  EXPECT_EQ(CrossoverShapes(8, 1)[0].tokens, 8);
}

TEST(TimeBothPrecisions, AlternatesAndTakesMedians) {
  const std::vector<CrossoverShape> shapes = {{1, 16}, {8, 16}};
  std::vector<std::pair<int, bool>> calls;
  std::vector<int> tokens;
  int call = 0;
  const auto timings = TimeBothPrecisions(
      shapes, /*num_features=*/16, /*max_tokens=*/128,
      /*repetitions=*/3, [&](const CrossoverShape& shape, bool bf16) {
        calls.push_back({shape.requests, bf16});
        tokens.push_back(shape.tokens);
        // One outlier per series, which the median drops.
        const double outlier = ++call <= 4 ? 100.0 : 1.0;
        return outlier * shape.requests * (bf16 ? 0.5 : 1.0);
      });
  // Shapes interleaved; the precision going first alternates by round.
  EXPECT_EQ(calls, (std::vector<std::pair<int, bool>>{{1, false},
                                                      {1, true},
                                                      {8, false},
                                                      {8, true},
                                                      {1, true},
                                                      {1, false},
                                                      {8, true},
                                                      {8, false},
                                                      {1, false},
                                                      {1, true},
                                                      {8, false},
                                                      {8, true}}));
  // Each repetition a shape not timed before, the same in both precisions.
  EXPECT_EQ(tokens,
            (std::vector<int>{16, 16, 16, 16, 17, 17, 17, 17, 18, 18, 18, 18}));
  ASSERT_EQ(timings.size(), 2u);
  // The mean length run: 17 tokens.
  EXPECT_EQ(timings[0].positions, 1 * (17 + 16));
  EXPECT_EQ(timings[1].positions, 8 * (17 + 16));
  EXPECT_DOUBLE_EQ(timings[0].fp32_seconds, 1.0);
  EXPECT_DOUBLE_EQ(timings[0].bf16_seconds, 0.5);
  EXPECT_DOUBLE_EQ(timings[1].fp32_seconds, 8.0);
  EXPECT_DOUBLE_EQ(timings[1].bf16_seconds, 4.0);
}

TEST(TimeBothPrecisions, NeverRunsPastTheModelsLongestRequest) {
  int longest = 0;
  TimeBothPrecisions({{2, 16}}, /*num_features=*/4, /*max_tokens=*/18,
                     /*repetitions=*/7, [&](const CrossoverShape& shape, bool) {
                       longest = std::max(longest, shape.tokens);
                       return 1.0;
                     });
  EXPECT_EQ(longest, 18);
}

TEST(PrecisionPlan, BatchesFromTheCrossoverRunInBf16) {
  const PrecisionPlan fp32;
  const PrecisionPlan every{true, 0};
  const PrecisionPlan large{true, 256};
  EXPECT_FALSE(RunsInBf16(fp32, 1 << 20));
  EXPECT_TRUE(RunsInBf16(every, 1));
  EXPECT_FALSE(RunsInBf16(large, 255));
  EXPECT_TRUE(RunsInBf16(large, 256));
  EXPECT_EQ(PrecisionName(fp32), "fp32");
  EXPECT_EQ(PrecisionName(large), "bf16");
  EXPECT_EQ(DescribePrecision(fp32), "fp32");
  EXPECT_EQ(DescribePrecision(every), "bf16");
  EXPECT_EQ(DescribePrecision(large),
            "bf16 from 256 positions per batch (requests x (tokens + "
            "features)), fp32 below");
}

TEST(GoldenFile, ReadsTheBundlesAnswers) {
  auto cases =
      ReadGoldenFile(FUSION_SOURCE_DIR "/models/fusion/1/golden.jsonl");
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_GE(cases->size(), 40u);
  for (const GoldenCase& golden : *cases) {
    EXPECT_FALSE(golden.input.token_ids.empty());
    EXPECT_EQ(golden.input.features.size(), 16u);
    ASSERT_EQ(golden.probabilities.size(), 2u);
    EXPECT_NEAR(golden.probabilities[0] + golden.probabilities[1], 1.0, 1e-5);
    EXPECT_TRUE(golden.text.has_value());
  }
  EXPECT_EQ((*cases)[0].line, 1);
  EXPECT_EQ((*cases)[0].request_id, "golden-000");
  EXPECT_EQ(DescribeGoldenCase((*cases)[7]),
            "golden.jsonl line 8 (golden-007)");
}

TEST(GoldenFile, MissingIsNotFoundAndMalformedIsInvalid) {
  EXPECT_EQ(ReadGoldenFile("/nonexistent/golden.jsonl").status().code(),
            absl::StatusCode::kNotFound);
  const std::string path =
      ::testing::TempDir() + "/precision_test_golden.jsonl";
  for (const char* line :
       {"not json", R"({"token_ids": [1, 2], "feature_vector": [0.5]})"}) {
    std::ofstream(path) << line << "\n";
    EXPECT_EQ(ReadGoldenFile(path).status().code(),
              absl::StatusCode::kInvalidArgument)
        << line;
    // The message names the file and the line.
    EXPECT_NE(ReadGoldenFile(path).status().message().find(path + ":1: "),
              std::string::npos)
        << ReadGoldenFile(path).status();
  }
  std::remove(path.c_str());
}

TEST(GoldenFile, CasesMustFitTheModel) {
  GoldenCase fits;
  fits.input.token_ids = {2, 7, 3};
  fits.input.features = {1.0f, 2.0f};
  fits.probabilities = {0.25f, 0.75f};
  EXPECT_TRUE(CheckGoldenCasesFit({fits}, 8, 2, 2).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(CheckGoldenCasesFit({}, 8, 2, 2)));
  GoldenCase bad = fits;
  bad.line = 2;
  bad.input.features.push_back(3.0f);  // would be copied past the buffer
  EXPECT_TRUE(
      absl::IsInvalidArgument(CheckGoldenCasesFit({fits, bad}, 8, 2, 2)));
  EXPECT_NE(CheckGoldenCasesFit({fits, bad}, 8, 2, 2)
                .message()
                .find("golden.jsonl line 2 does not fit"),
            std::string::npos)
      << CheckGoldenCasesFit({fits, bad}, 8, 2, 2);
  bad = fits;
  bad.input.token_ids.clear();
  EXPECT_FALSE(CheckGoldenCasesFit({bad}, 8, 2, 2).ok());
  EXPECT_FALSE(CheckGoldenCasesFit({fits}, 2, 2, 2).ok());  // too long
  bad = fits;
  bad.probabilities.pop_back();
  EXPECT_FALSE(CheckGoldenCasesFit({bad}, 8, 2, 2).ok());
}

TEST(GoldenFile, MaxProbabilityDeltaOverEveryClass) {
  std::vector<GoldenCase> cases(2);
  cases[0].probabilities = {0.9f, 0.1f};
  cases[1].probabilities = {0.25f, 0.75f};
  std::vector<ScoringOutput> outputs(2);
  outputs[0].probabilities = {0.9f, 0.1f};
  outputs[1].probabilities = {0.25f, 0.745f};
  EXPECT_NEAR(MaxProbabilityDelta(cases, outputs), 0.005, 1e-6);
  outputs[1].probabilities[0] = std::nanf("");
  EXPECT_TRUE(std::isinf(MaxProbabilityDelta(cases, outputs)));
  outputs.pop_back();
  EXPECT_TRUE(std::isinf(MaxProbabilityDelta(cases, outputs)));
}

TEST(GoldenFile, FirstDisagreementNamesTheCaseWithBothAnswers) {
  std::vector<GoldenCase> cases(3);
  for (int i = 0; i < 3; ++i) {
    cases[i].probabilities = {0.25f, 0.75f};
    cases[i].line = i + 1;
    cases[i].request_id = "g" + std::to_string(i);
  }
  std::vector<ScoringOutput> outputs(3);
  for (auto& out : outputs) out.probabilities = {0.2505f, 0.7495f};
  EXPECT_EQ(FirstDisagreement(cases, outputs, 1e-3), std::nullopt);
  outputs[1].probabilities = {0.5f, 0.5f};
  outputs[2].probabilities = {0.0f, 1.0f};
  EXPECT_EQ(FirstDisagreement(cases, outputs, 1e-3),
            "golden.jsonl line 2 (g1): expected [0.25, 0.75], got [0.5, 0.5], "
            "off by 0.25");
  outputs[1].probabilities = {std::nanf(""), 0.75f};
  EXPECT_NE(FirstDisagreement(cases, outputs, 1e-3)->find("line 2 (g1)"),
            std::string::npos);
  outputs[1].probabilities = {0.25f};  // a class missing
  EXPECT_NE(FirstDisagreement(cases, outputs, 1e-3)->find("line 2 (g1)"),
            std::string::npos);
  outputs.pop_back();
  EXPECT_EQ(FirstDisagreement(cases, outputs, 1e-3),
            "2 answers for 3 golden cases");
}

}  // namespace
}  // namespace fusion::runtime
