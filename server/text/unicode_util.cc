#include "server/text/unicode_util.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fusion::text::internal {
namespace {

// No code point below U+0300 has a non-zero combining class or category Mn.
constexpr char32_t kFirstCombiningMark = 0x0300;

utf8proc_category_t Category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

int CombiningClass(char32_t c) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))
      ->combining_class;
}

bool InRange(char32_t c, char32_t lo, char32_t hi) {
  return c >= lo && c <= hi;
}

// Word_Break = MidLetter, MidNumLet or Single_Quote: the non-category part of
// Case_Ignorable.
bool IsWordBreakMid(char32_t c) {
  static constexpr char32_t kMid[] = {
      0x0027, 0x002E, 0x003A, 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2018, 0x2019,
      0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
  return std::find(std::begin(kMid), std::end(kMid), c) != std::end(kMid);
}

// Other_Lowercase / Other_Uppercase characters that are neither case-mapped
// nor Case_Ignorable (the rest are covered by IsCased's other tests).
bool IsOtherCasedWithoutMapping(char32_t c) {
  return c == 0x00AA || c == 0x00BA || InRange(c, 0x1F130, 0x1F149) ||
         InRange(c, 0x1F150, 0x1F169) || InRange(c, 0x1F170, 0x1F189);
}

// True when U+03A3 at `word[i]` is in the Final_Sigma context:
//   \p{Cased} \p{Case_Ignorable}* U+03A3 !(\p{Case_Ignorable}* \p{Cased})
// (the same scan CPython's str.lower() performs).
bool IsFinalSigma(const char32_t* word, size_t size, size_t i) {
  size_t j = i;
  while (j > 0 && IsCaseIgnorable(word[j - 1])) --j;
  if (j == 0 || !IsCased(word[j - 1])) return false;
  for (j = i + 1; j < size; ++j) {
    if (!IsCaseIgnorable(word[j])) return !IsCased(word[j]);
  }
  return true;
}

// Canonical ordering: each run of non-starters (combining class > 0) is
// stably sorted by class. Sorting each run as a whole keeps this O(n log n):
// an insertion sort is quadratic on a long run (a 1 MB word of alternating
// marks took minutes of an RPC thread).
void SortCombiningMarks(std::vector<char32_t>* cps) {
  std::vector<char32_t>& v = *cps;
  std::vector<std::pair<int, char32_t>> run;  // (class, mark)
  for (size_t i = 0; i < v.size();) {
    const size_t begin = i;
    run.clear();
    for (; i < v.size() && v[i] >= kFirstCombiningMark; ++i) {
      const int ccc = CombiningClass(v[i]);
      if (ccc == 0) break;
      run.emplace_back(ccc, v[i]);
    }
    if (run.empty()) {
      ++i;
      continue;
    }
    std::stable_sort(run.begin(), run.end(), [](const auto& a, const auto& b) {
      return a.first < b.first;
    });
    for (size_t k = 0; k < run.size(); ++k) v[begin + k] = run[k].second;
  }
}

}  // namespace

absl::Status DecodeUtf8(absl::string_view text, std::vector<char32_t>* out) {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const auto size = static_cast<utf8proc_ssize_t>(text.size());
  utf8proc_ssize_t pos = 0;
  while (pos < size) {
    if (bytes[pos] < 0x80) {
      out->push_back(bytes[pos++]);
      continue;
    }
    utf8proc_int32_t c = -1;
    const utf8proc_ssize_t n = utf8proc_iterate(bytes + pos, size - pos, &c);
    if (n <= 0 || c < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid UTF-8 at byte offset ", pos));
    }
    out->push_back(static_cast<char32_t>(c));
    pos += n;
  }
  return absl::OkStatus();
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
    return;
  }
  utf8proc_uint8_t buf[4];
  const utf8proc_ssize_t n =
      utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

bool IsDroppedByCleaning(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;  // NUL and ASCII Cc.
  if (c == 0xFFFD) return true;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

bool IsWordSeparator(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  if (c < 0x80) return false;
  const utf8proc_category_t cat = Category(c);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}

bool IsPunctuation(char32_t c) {
  if (InRange(c, 33, 47) || InRange(c, 58, 64) || InRange(c, 91, 96) ||
      InRange(c, 123, 126)) {
    return true;
  }
  if (c < 0x80) return false;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

bool IsCjkIdeograph(char32_t c) {
  return InRange(c, 0x4E00, 0x9FFF) || InRange(c, 0x3400, 0x4DBF) ||
         InRange(c, 0x20000, 0x2A6DF) || InRange(c, 0x2A700, 0x2B73F) ||
         InRange(c, 0x2B740, 0x2B81F) || InRange(c, 0x2B820, 0x2CEAF) ||
         InRange(c, 0xF900, 0xFAFF) || InRange(c, 0x2F800, 0x2FA1F);
}

bool IsNonspacingMark(char32_t c) {
  return c >= kFirstCombiningMark && Category(c) == UTF8PROC_CATEGORY_MN;
}

bool IsCased(char32_t c) {
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
      return true;
    default:
      break;
  }
  const auto cp = static_cast<utf8proc_int32_t>(c);
  return utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp ||
         IsOtherCasedWithoutMapping(c);
}

bool IsCaseIgnorable(char32_t c) {
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      return IsWordBreakMid(c);
  }
}

void AppendLowercase(const char32_t* word, size_t size,
                     std::vector<char32_t>* out) {
  for (size_t i = 0; i < size; ++i) {
    const char32_t c = word[i];
    if (c < 0x80) {
      out->push_back(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    } else if (c == 0x03A3) {
      out->push_back(IsFinalSigma(word, size, i) ? 0x03C2 : 0x03C3);
    } else if (c == 0x0130) {  // The one unconditional SpecialCasing entry.
      out->push_back(0x0069);
      out->push_back(0x0307);
    } else {
      out->push_back(static_cast<char32_t>(
          utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
}

void DecomposeCanonical(std::vector<char32_t>* cps,
                        std::vector<char32_t>* scratch) {
  scratch->clear();
  for (const char32_t c : *cps) {
    if (c < 0xC0) {  // Nothing below U+00C0 has a canonical decomposition.
      scratch->push_back(c);
      continue;
    }
    utf8proc_int32_t buf[8];
    int boundclass = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 8,
                                UTF8PROC_DECOMPOSE, &boundclass);
    if (n <= 0 || n > 8) {  // Cannot happen for canonical mappings.
      scratch->push_back(c);
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      scratch->push_back(static_cast<char32_t>(buf[k]));
    }
  }
  SortCombiningMarks(scratch);
  cps->swap(*scratch);
}

}  // namespace fusion::text::internal
