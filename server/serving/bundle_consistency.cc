#include "server/serving/bundle_consistency.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace fusion::serving {
namespace {

// "id 812 (\"##ing\")", or "nothing" past the end of `ids`.
std::string DescribeId(const text::WordPieceTokenizer& tokenizer,
                       const std::vector<int32_t>& ids, size_t at) {
  if (at >= ids.size()) return "nothing";
  auto token = tokenizer.TokenFor(ids[at]);
  return absl::StrCat("id ", ids[at], " (\"",
                      token.ok() ? *token : "not in the vocabulary", "\")");
}

}  // namespace

absl::Status CheckGoldenTokenization(
    const std::vector<runtime::GoldenCase>& cases,
    const text::WordPieceTokenizer& tokenizer, const std::string& vocab_path) {
  for (const runtime::GoldenCase& golden : cases) {
    if (!golden.text.has_value()) continue;
    auto encoding = tokenizer.Encode(*golden.text);
    if (!encoding.ok()) continue;
    const std::vector<int32_t>& got = encoding->ids;
    const std::vector<int32_t>& expected = golden.input.token_ids;
    if (got == expected) continue;
    const size_t at =
        std::mismatch(got.begin(), got.end(), expected.begin(), expected.end())
            .first -
        got.begin();
    return absl::FailedPreconditionError(absl::StrCat(
        vocab_path, " (with config.pbtxt's tokenizer settings) does not give ",
        runtime::DescribeGoldenCase(golden), "'s token ids: at position ", at,
        " it gives ", DescribeId(tokenizer, got, at), ", the golden file ",
        expected.size() > at ? absl::StrCat("id ", expected[at]) : "nothing",
        " (", got.size(), " ids against ", expected.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckVocabularyFitsModel(runtime::ModelRuntime& runtime,
                                      const text::WordPieceTokenizer& tokenizer,
                                      int num_features,
                                      const std::string& vocab_path) {
  runtime::ScoringInput input;
  const int32_t last = tokenizer.vocab_size() - 1;
  input.token_ids = {tokenizer.cls_id(), last, tokenizer.sep_id()};
  input.features.assign(num_features, 0.0f);
  const runtime::ScoringInput* batch[] = {&input};
  const absl::Status scored = runtime.RunBatch(batch).status();
  if (scored.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(vocab_path, " has ", tokenizer.vocab_size(),
                   " entries but the model fails on id ", last,
                   " (is it this model's vocabulary?): ", scored.message()));
}

}  // namespace fusion::serving
