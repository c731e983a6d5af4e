#include "server/serving/bundle_consistency.h"

#include <gtest/gtest.h>

#include "server/runtime/fake_model_runtime.h"

namespace fusion::serving {
namespace {

std::unique_ptr<text::WordPieceTokenizer> Tokenizer(
    text::WordPieceTokenizerOptions options = {}) {
  auto tokenizer = text::WordPieceTokenizer::Create(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s"}, options);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::move(*tokenizer);
}

runtime::GoldenCase Case(int line, std::string text, std::vector<int32_t> ids) {
  runtime::GoldenCase golden;
  golden.line = line;
  golden.request_id = "g" + std::to_string(line);
  golden.text = std::move(text);
  golden.input.token_ids = std::move(ids);
  return golden;
}

TEST(CheckGoldenTokenization, PassesWhenEveryTextGivesItsIds) {
  const std::vector<runtime::GoldenCase> cases = {
      Case(1, "hello worlds", {2, 4, 5, 6, 3}), Case(2, "", {2, 3})};
  EXPECT_TRUE(CheckGoldenTokenization(cases, *Tokenizer(), "v.txt").ok());
}

TEST(CheckGoldenTokenization, NamesTheCaseAndTheFirstIdThatDiffers) {
  // As if the exporter's vocabulary had "world" at 6.
  const std::vector<runtime::GoldenCase> cases = {
      Case(1, "hello", {2, 4, 3}), Case(2, "hello world", {2, 4, 6, 3})};
  const absl::Status status =
      CheckGoldenTokenization(cases, *Tokenizer(), "b/vocab.txt");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "b/vocab.txt (with config.pbtxt's tokenizer settings) does not "
            "give golden.jsonl line 2 (g2)'s token ids: at position 2 it "
            "gives id 5 (\"world\"), the golden file id 6 (4 ids against 4)");
}

TEST(CheckGoldenTokenization, SkipsTextsTheConfigRefuses) {
  text::WordPieceTokenizerOptions reject;
  reject.max_tokens = 3;
  reject.truncation = text::TruncationPolicy::kReject;
  // The exporter truncated it; this config refuses it instead.
  const std::vector<runtime::GoldenCase> cases = {
      Case(1, "hello world", {2, 4, 3})};
  EXPECT_TRUE(CheckGoldenTokenization(cases, *Tokenizer(reject), "v").ok());
  // A case without a text checks nothing.
  runtime::GoldenCase no_text = Case(2, "", {2, 9, 3});
  no_text.text.reset();
  EXPECT_TRUE(CheckGoldenTokenization({no_text}, *Tokenizer(), "v").ok());
}

TEST(CheckVocabularyFitsModel, ScoresTheLastIdAndSaysWhyItFailed) {
  runtime::FakeModelRuntime fake;
  const auto tokenizer = Tokenizer();
  EXPECT_TRUE(CheckVocabularyFitsModel(fake, *tokenizer, 2, "v.txt").ok());
  fake.FailNextBatch(
      absl::InternalError("model forward failed: index out of range in self"));
  const absl::Status status =
      CheckVocabularyFitsModel(fake, *tokenizer, 2, "v.txt");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "v.txt has 7 entries but the model fails on id 6 (is it this "
            "model's vocabulary?): model forward failed: index out of range "
            "in self");
}

}  // namespace
}  // namespace fusion::serving
