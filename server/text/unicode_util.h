// Unicode helpers for the BERT pre-tokenizer, built on utf8proc.
//
// The predicates mirror the character classes of HuggingFace's
// BasicTokenizer (transformers/models/bert/tokenization_bert.py), which in
// turn rely on Python's `unicodedata` and `str` methods. Character data comes
// from utf8proc's tables (Unicode 15.0 in utf8proc 2.8); Python 3.11 uses
// Unicode 14.0, so code points first assigned in 15.0 are classified
// differently (Python sees category Cn and drops them). All functions are
// pure and thread-safe.

#ifndef FUSIONSERVE_SERVER_TEXT_UNICODE_UTIL_H_
#define FUSIONSERVE_SERVER_TEXT_UNICODE_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fusion::text::internal {

// Decodes `text` into code points, appending them to `out`. Returns
// INVALID_ARGUMENT naming the byte offset of the first malformed sequence
// (truncated, overlong, surrogate or > U+10FFFF).
absl::Status DecodeUtf8(absl::string_view text, std::vector<char32_t>* out);

// Appends the UTF-8 encoding of a valid code point to `out`.
void AppendUtf8(char32_t c, std::string* out);

// U+0000, U+FFFD and every category C* character except \t \n \r: the
// characters BERT's text cleaning drops.
bool IsDroppedByCleaning(char32_t c);

// Characters that separate words: space, \t, \n, \r, category Zs (BERT's
// `_is_whitespace`), plus Zl/Zp (U+2028, U+2029), on which Python's
// `str.split()` also splits after cleaning.
bool IsWordSeparator(char32_t c);

// ASCII 33-47, 58-64, 91-96, 123-126, or any category P* character.
bool IsPunctuation(char32_t c);

// The CJK ideograph blocks that BERT surrounds with spaces.
bool IsCjkIdeograph(char32_t c);

// Category Mn (removed when stripping accents).
bool IsNonspacingMark(char32_t c);

// Approximations of the Unicode properties Cased and Case_Ignorable, used only
// for the Final_Sigma rule of Python's `str.lower()`.
bool IsCased(char32_t c);
bool IsCaseIgnorable(char32_t c);

// Lowercases `word` the way Python's `str.lower()` does: simple lowercase
// mappings, U+0130 -> "i\u0307", and the Final_Sigma rule for U+03A3.
// Appends to `out`.
void AppendLowercase(const char32_t* word, size_t size,
                     std::vector<char32_t>* out);

// Replaces `cps` by its canonical decomposition (NFD), including canonical
// ordering of combining marks.
void DecomposeCanonical(std::vector<char32_t>* cps,
                        std::vector<char32_t>* scratch);

}  // namespace fusion::text::internal

#endif  // FUSIONSERVE_SERVER_TEXT_UNICODE_UTIL_H_
