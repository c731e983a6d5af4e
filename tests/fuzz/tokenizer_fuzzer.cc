// libFuzzer target: the WordPiece tokenizer on raw bytes, with the model's
// vocab (models/fusion/1/vocab.txt) and three option sets (the model's; a
// cased one without CJK splitting and 5-character words; a 16-token one that
// rejects over-long text). Checks the contract of wordpiece_tokenizer.h on
// every result: errors are INVALID_ARGUMENT; an encoding is [CLS] pieces
// [SEP], at most max_tokens ids, each a vocab id whose entry is the token
// beside it; rejecting fails exactly where truncating truncates.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "server/text/wordpiece_tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

namespace fusion::fuzz {
namespace {

using text::Encoding;
using text::TruncationPolicy;
using text::WordPieceTokenizer;

std::unique_ptr<WordPieceTokenizer> Load(
    const WordPieceTokenizer::Options& options) {
  auto tokenizer = WordPieceTokenizer::FromVocabFile(
      FUSION_SOURCE_DIR "/models/fusion/1/vocab.txt", options);
  FUZZ_CHECK(tokenizer.ok(), tokenizer.status().ToString());
  return std::move(*tokenizer);
}

struct Tokenizers {
  std::unique_ptr<WordPieceTokenizer> model, cased, truncating, rejecting;
};

const Tokenizers& Get() {
  static const Tokenizers* const tokenizers = [] {
    auto* t = new Tokenizers();
    t->model = Load({});  // the model's config.pbtxt: the defaults
    WordPieceTokenizer::Options cased;
    cased.lowercase = false;
    cased.tokenize_cjk_chars = false;
    cased.max_chars_per_word = 5;
    t->cased = Load(cased);
    WordPieceTokenizer::Options short_text;
    short_text.max_tokens = 16;
    t->truncating = Load(short_text);
    short_text.truncation = TruncationPolicy::kReject;
    t->rejecting = Load(short_text);
    return t;
  }();
  return *tokenizers;
}

// The contract's guarantees on one result; returns the encoding if any.
const Encoding* Check(const WordPieceTokenizer& tokenizer,
                      const absl::StatusOr<Encoding>& result) {
  if (!result.ok()) {
    FUZZ_CHECK(result.status().code() == absl::StatusCode::kInvalidArgument,
               result.status().ToString());
    return nullptr;
  }
  const Encoding& e = *result;
  FUZZ_CHECK(e.ids.size() >= 2, "no [CLS] ... [SEP]");
  FUZZ_CHECK(
      e.ids.size() <= static_cast<size_t>(tokenizer.options().max_tokens),
      e.ids.size(), " ids");
  FUZZ_CHECK(e.ids.front() == tokenizer.cls_id(), "first id ", e.ids.front());
  FUZZ_CHECK(e.ids.back() == tokenizer.sep_id(), "last id ", e.ids.back());
  FUZZ_CHECK(e.tokens.size() == e.ids.size(), e.tokens.size(), " tokens for ",
             e.ids.size(), " ids");
  FUZZ_CHECK(
      !e.truncated ||
          e.ids.size() == static_cast<size_t>(tokenizer.options().max_tokens),
      "truncated to ", e.ids.size(), " ids");
  for (size_t i = 0; i < e.ids.size(); ++i) {
    auto token = tokenizer.TokenFor(e.ids[i]);
    FUZZ_CHECK(token.ok(), "id ", e.ids[i], ": ", token.status().ToString());
    FUZZ_CHECK(*token == e.tokens[i], "ids[", i, "] is '", *token, "', tokens[",
               i, "] is '", e.tokens[i], "'");
  }
  return &e;
}

}  // namespace
}  // namespace fusion::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fusion::fuzz::Check;
  const auto& t = fusion::fuzz::Get();
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const auto model = t.model->Encode(text);
  Check(*t.model, model);
  Check(*t.cased, t.cased->Encode(text));

  const auto truncating = t.truncating->Encode(text);
  const auto rejecting = t.rejecting->Encode(text);
  const auto* kept = Check(*t.truncating, truncating);
  const auto* whole = Check(*t.rejecting, rejecting);
  // Same text, same vocab: the two policies differ only on long text, and
  // text too long for 16 tokens is at least as long for the model's 128.
  FUZZ_CHECK(model.ok() == truncating.ok(),
             "model: ", model.status().ToString(),
             ", 16 tokens: ", truncating.status().ToString());
  if (kept != nullptr) {
    FUZZ_CHECK((whole == nullptr) == kept->truncated,
               "truncated: ", kept->truncated,
               ", rejected: ", rejecting.status().ToString());
    if (whole != nullptr) {
      FUZZ_CHECK(whole->ids == kept->ids, "the policies disagree on ids");
    }
    // Truncation keeps the first pieces: those of the longer limit.
    for (size_t i = 0; i + 1 < kept->ids.size(); ++i) {
      FUZZ_CHECK(kept->ids[i] == model->ids[i], "piece ", i, " differs");
    }
  }
  return 0;
}
