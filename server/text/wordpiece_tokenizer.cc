#include "server/text/wordpiece_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/text/unicode_util.h"

namespace fusion::text {
namespace {

constexpr absl::string_view kContinuationPrefix = "##";

absl::Status ValidateOptions(const WordPieceTokenizerOptions& options) {
  if (options.max_tokens < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens must be >= 2 ([CLS] and [SEP]), got ", options.max_tokens));
  }
  if (options.max_chars_per_word < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_chars_per_word must be >= 1, got ", options.max_chars_per_word));
  }
  return absl::OkStatus();
}

absl::Status ValidateEntry(absl::string_view entry, size_t line) {
  std::vector<char32_t> unused;
  if (absl::Status s = internal::DecodeUtf8(entry, &unused); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab line ", line + 1, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open vocab file ", path));
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading vocab file ", path));
  }
  return lines;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(const Options& options)
    : options_(options),
      pre_tokenizer_(BertPreTokenizerOptions{options.lowercase,
                                             options.tokenize_cjk_chars}) {}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>>
WordPieceTokenizer::FromVocabFile(const std::string& path,
                                  const Options& options) {
  absl::StatusOr<std::vector<std::string>> lines = ReadLines(path);
  if (!lines.ok()) return lines.status();
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      Create(*std::move(lines), options);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Create(
    std::vector<std::string> vocab, const Options& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  std::unique_ptr<WordPieceTokenizer> tokenizer(
      new WordPieceTokenizer(options));
  if (absl::Status s = tokenizer->InitVocab(std::move(vocab)); !s.ok()) {
    return s;
  }
  return tokenizer;
}

absl::Status WordPieceTokenizer::InitVocab(std::vector<std::string> vocab) {
  if (vocab.empty()) return absl::InvalidArgumentError("vocab is empty");
  if (vocab.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError("vocab has more than 2^31-1 entries");
  }
  tokens_ = std::move(vocab);
  ids_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& entry = tokens_[i];
    if (absl::Status s = ValidateEntry(entry, i); !s.ok()) return s;
    const auto id = static_cast<int32_t>(i);
    auto [it, inserted] = ids_.try_emplace(entry, id);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate vocab entry \"", entry, "\" on lines ",
                       it->second + 1, " and ", i + 1));
    }
    max_entry_bytes_ = std::max(max_entry_bytes_, entry.size());
    if (absl::StartsWith(entry, kContinuationPrefix)) {
      absl::string_view rest =
          absl::string_view(entry).substr(kContinuationPrefix.size());
      continuation_ids_.try_emplace(rest, id);
      max_continuation_bytes_ = std::max(max_continuation_bytes_, rest.size());
    }
  }
  absl::StatusOr<int32_t> unk = RequireSpecial(options_.unk_token);
  absl::StatusOr<int32_t> cls = RequireSpecial(options_.cls_token);
  absl::StatusOr<int32_t> sep = RequireSpecial(options_.sep_token);
  absl::StatusOr<int32_t> pad = RequireSpecial(options_.pad_token);
  for (const auto* id : {&unk, &cls, &sep, &pad}) {
    if (!id->ok()) return id->status();
  }
  unk_id_ = *unk;
  cls_id_ = *cls;
  sep_id_ = *sep;
  pad_id_ = *pad;
  return absl::OkStatus();
}

absl::StatusOr<int32_t> WordPieceTokenizer::RequireSpecial(
    absl::string_view token) const {
  std::optional<int32_t> id = IdFor(token);
  if (!id.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("special token \"", token, "\" is not in the vocab"));
  }
  return *id;
}

std::optional<int32_t> WordPieceTokenizer::IdFor(
    absl::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<absl::string_view> WordPieceTokenizer::TokenFor(
    int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    return absl::OutOfRangeError(absl::StrCat(
        "token id ", id, " is outside the vocab [0, ", vocab_size(), ")"));
  }
  return absl::string_view(tokens_[static_cast<size_t>(id)]);
}

absl::StatusOr<Encoding> WordPieceTokenizer::Encode(
    absl::string_view text) const {
  const size_t max_pieces = static_cast<size_t>(options_.max_tokens) - 2;
  Encoding encoding;
  std::vector<int32_t>& ids = encoding.ids;
  ids.reserve(std::min(max_pieces, text.size()) + 2);
  ids.push_back(cls_id_);
  bool overflow = false;
  absl::Status status = pre_tokenizer_.Run(text, [&](const PreToken& word) {
    AppendWordPieces(word, &ids);
    overflow = ids.size() - 1 > max_pieces;
    return !overflow;  // Nothing after the limit is ever used.
  });
  if (!status.ok()) return status;
  if (overflow) {
    if (options_.truncation == TruncationPolicy::kReject) {
      return absl::InvalidArgumentError(
          absl::StrCat("text is longer than max_tokens=", options_.max_tokens,
                       " tokens ([CLS] and [SEP] included)"));
    }
    ids.resize(max_pieces + 1);
    encoding.truncated = true;
  }
  ids.push_back(sep_id_);
  encoding.tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    encoding.tokens.push_back(tokens_[static_cast<size_t>(id)]);
  }
  return encoding;
}

void WordPieceTokenizer::AppendWordPieces(const PreToken& word,
                                          std::vector<int32_t>* ids) const {
  const size_t num_chars = word.num_chars();
  if (num_chars > static_cast<size_t>(options_.max_chars_per_word)) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t first_piece = ids->size();
  for (size_t start = 0; start < num_chars;) {
    size_t end = num_chars;
    std::optional<int32_t> id = LongestMatch(word, start, &end);
    if (!id.has_value()) {  // One unmatched position spoils the whole word.
      ids->resize(first_piece);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(*id);
    start = end;
  }
}

std::optional<int32_t> WordPieceTokenizer::LongestMatch(const PreToken& word,
                                                        size_t start,
                                                        size_t* end) const {
  const IdMap& map = start == 0 ? ids_ : continuation_ids_;
  const size_t max_bytes =
      start == 0 ? max_entry_bytes_ : max_continuation_bytes_;
  for (size_t e = *end; e > start; --e) {
    absl::string_view piece = word.Chars(start, e);
    if (piece.size() > max_bytes) continue;
    auto it = map.find(piece);
    if (it != map.end()) {
      *end = e;
      return it->second;
    }
  }
  return std::nullopt;
}

}  // namespace fusion::text
