#include "server/text/bert_pre_tokenizer.h"

#include <algorithm>

#include "server/text/unicode_util.h"

namespace fusion::text {

using internal::AppendLowercase;
using internal::AppendUtf8;
using internal::DecomposeCanonical;
using internal::IsCjkIdeograph;
using internal::IsDroppedByCleaning;
using internal::IsNonspacingMark;
using internal::IsPunctuation;
using internal::IsWordSeparator;

namespace {

constexpr char32_t kSeparator = ' ';

// Drops the characters that cleaning removes and maps every separator to a
// space, in place.
void CleanInPlace(std::vector<char32_t>* cps) {
  size_t out = 0;
  for (const char32_t c : *cps) {
    if (IsDroppedByCleaning(c)) continue;
    (*cps)[out++] = IsWordSeparator(c) ? kSeparator : c;
  }
  cps->resize(out);
}

}  // namespace

struct BertPreTokenizer::Scratch {
  std::vector<char32_t> normalized;
  std::vector<char32_t> decomposed;
  std::string utf8;
  std::vector<uint32_t> offsets;
};

absl::Status BertPreTokenizer::Run(
    absl::string_view text,
    absl::FunctionRef<bool(const PreToken&)> visit) const {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  if (absl::Status s = internal::DecodeUtf8(text, &cps); !s.ok()) return s;
  CleanInPlace(&cps);

  Scratch scratch;
  const char32_t* data = cps.data();
  size_t begin = 0;
  for (size_t i = 0; i <= cps.size(); ++i) {
    const bool at_end = i == cps.size();
    const bool cjk =
        !at_end && options_.tokenize_cjk_chars && IsCjkIdeograph(cps[i]);
    if (!at_end && !cjk && cps[i] != kSeparator) continue;
    if (begin < i && !VisitWord(data + begin, i - begin, &scratch, visit)) {
      break;
    }
    if (cjk && !VisitWord(data + i, 1, &scratch, visit)) break;
    begin = i + 1;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> BertPreTokenizer::Tokenize(
    absl::string_view text) const {
  std::vector<std::string> tokens;
  absl::Status status = Run(text, [&tokens](const PreToken& token) {
    tokens.emplace_back(token.text());
    return true;
  });
  if (!status.ok()) return status;
  return tokens;
}

void BertPreTokenizer::Normalize(const char32_t* word, size_t size,
                                 Scratch* scratch) const {
  std::vector<char32_t>& out = scratch->normalized;
  out.clear();
  if (!options_.lowercase) {
    out.assign(word, word + size);
    return;
  }
  AppendLowercase(word, size, &out);
  DecomposeCanonical(&out, &scratch->decomposed);
  out.erase(std::remove_if(out.begin(), out.end(), IsNonspacingMark),
            out.end());
}

bool BertPreTokenizer::VisitWord(
    const char32_t* word, size_t size, Scratch* scratch,
    absl::FunctionRef<bool(const PreToken&)> visit) const {
  Normalize(word, size, scratch);
  const std::vector<char32_t>& chars = scratch->normalized;
  std::string& utf8 = scratch->utf8;
  std::vector<uint32_t>& offsets = scratch->offsets;
  utf8.clear();
  offsets.clear();
  for (const char32_t c : chars) {
    offsets.push_back(static_cast<uint32_t>(utf8.size()));
    AppendUtf8(c, &utf8);
  }
  offsets.push_back(static_cast<uint32_t>(utf8.size()));

  auto emit = [&](size_t begin, size_t end) {
    return visit(
        PreToken(utf8.data(),
                 absl::MakeConstSpan(offsets.data() + begin, end - begin + 1)));
  };
  size_t begin = 0;
  for (size_t i = 0; i < chars.size(); ++i) {
    if (!IsPunctuation(chars[i])) continue;
    if (begin < i && !emit(begin, i)) return false;
    if (!emit(i, i + 1)) return false;
    begin = i + 1;
  }
  if (begin < chars.size()) return emit(begin, chars.size());
  return true;
}

}  // namespace fusion::text
