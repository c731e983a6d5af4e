// BERT "basic tokenization": the text normalization and word splitting that
// HuggingFace's BertTokenizer performs before WordPiece.
//
// Steps, in order (each matches transformers' BasicTokenizer):
//   1. Drop U+0000, U+FFFD and control characters (category C* except
//      \t \n \r); whitespace (space, \t, \n, \r, Zs) separates words.
//   2. Optionally put spaces around CJK ideographs (BERT's block list).
//   3. Split on whitespace (also on U+2028/U+2029, as Python's str.split()).
//   4. If lowercasing: lowercase each word as Python's str.lower() does, then
//      strip accents (NFD, drop category Mn). Without lowercasing the word is
//      left as is (HF's strip_accents=None follows do_lower_case).
//   5. Split each word on punctuation; every punctuation character becomes a
//      token of its own. Empty words disappear.
//
// Thread-safety: immutable after construction; Run() may be called
// concurrently from any number of threads.

#ifndef FUSIONSERVE_SERVER_TEXT_BERT_PRE_TOKENIZER_H_
#define FUSIONSERVE_SERVER_TEXT_BERT_PRE_TOKENIZER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace fusion::text {

struct BertPreTokenizerOptions {
  bool lowercase = true;
  bool tokenize_cjk_chars = true;
};

// One basic token, valid only during the visit callback. Gives access to
// UTF-8 substrings by code point index without copying.
class PreToken {
 public:
  // `char_offsets[i]` is the byte offset in `base` of code point i; the last
  // entry is the end offset. Requires char_offsets.size() >= 2.
  PreToken(const char* base, absl::Span<const uint32_t> char_offsets)
      : base_(base), char_offsets_(char_offsets) {}

  size_t num_chars() const { return char_offsets_.size() - 1; }
  absl::string_view text() const { return Chars(0, num_chars()); }
  // The UTF-8 bytes of code points [begin, end).
  absl::string_view Chars(size_t begin, size_t end) const {
    return absl::string_view(base_ + char_offsets_[begin],
                             char_offsets_[end] - char_offsets_[begin]);
  }

 private:
  const char* base_;
  absl::Span<const uint32_t> char_offsets_;
};

class BertPreTokenizer {
 public:
  explicit BertPreTokenizer(const BertPreTokenizerOptions& options = {})
      : options_(options) {}

  // Calls `visit` for each basic token of `text`, in order, until it returns
  // false. Returns INVALID_ARGUMENT (naming the byte offset) if `text` is not
  // valid UTF-8; the text is validated before anything is visited.
  absl::Status Run(absl::string_view text,
                   absl::FunctionRef<bool(const PreToken&)> visit) const;

  // Convenience wrapper returning the basic tokens as strings.
  absl::StatusOr<std::vector<std::string>> Tokenize(
      absl::string_view text) const;

 private:
  struct Scratch;

  // Normalizes one whitespace-delimited word and visits its punctuation-split
  // pieces. Returns false when `visit` asked to stop.
  bool VisitWord(const char32_t* word, size_t size, Scratch* scratch,
                 absl::FunctionRef<bool(const PreToken&)> visit) const;
  void Normalize(const char32_t* word, size_t size, Scratch* scratch) const;

  BertPreTokenizerOptions options_;
};

}  // namespace fusion::text

#endif  // FUSIONSERVE_SERVER_TEXT_BERT_PRE_TOKENIZER_H_
