// WordPiece tokenizer compatible with HuggingFace's BertTokenizer (the slow,
// pure-Python one) and a BERT `vocab.txt`.
//
// Contract
// --------
// * Encode(text) returns `[CLS] pieces... [SEP]`: the BERT basic tokenization
//   of `text` (see bert_pre_tokenizer.h), then greedy longest-match-first
//   WordPiece per word, continuation pieces prefixed "##". A word longer than
//   `max_chars_per_word` code points, or one that cannot be covered by vocab
//   pieces, becomes a single unk token. Special-token strings that appear in
//   the input text are NOT treated specially: "[SEP]" in the text is split
//   like any other text ("[", "sep", "]").
// * Matches model/wordpiece.py (Python 3.11) id for id, except on code
//   points first assigned in Unicode 15.0 (see unicode_util.h).
// * At most `max_tokens` ids, [CLS] and [SEP] included. Longer inputs are
//   truncated (Encoding::truncated is set) or rejected with INVALID_ARGUMENT,
//   as `truncation` says.
// * Errors: INVALID_ARGUMENT for text that is not valid UTF-8 (the message
//   names the byte offset) and for rejected over-long text. Factories return
//   INVALID_ARGUMENT for bad options or a bad vocab (missing special token,
//   duplicate entry, invalid UTF-8 line) and NOT_FOUND when the vocab file
//   cannot be opened.
// * Thread-safety: immutable after creation; all methods are const and may be
//   called concurrently from any number of threads without locking.
// * Cost: Encode allocates a handful of buffers per call (reused across the
//   words of the text), plus the returned Encoding; vocab lookups take
//   string_views and do not allocate.

#ifndef FUSIONSERVE_SERVER_TEXT_WORDPIECE_TOKENIZER_H_
#define FUSIONSERVE_SERVER_TEXT_WORDPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/text/bert_pre_tokenizer.h"

namespace fusion::text {

enum class TruncationPolicy {
  kTruncate,  // Keep the first max_tokens - 2 pieces.
  kReject,    // Fail with INVALID_ARGUMENT.
};

struct WordPieceTokenizerOptions {
  bool lowercase = true;           // Lowercase and strip accents.
  bool tokenize_cjk_chars = true;  // Each CJK ideograph is its own word.
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  int max_chars_per_word = 100;  // Longer words map to unk. Must be >= 1.
  int max_tokens = 128;          // Including [CLS] and [SEP]. Must be >= 2.
  TruncationPolicy truncation = TruncationPolicy::kTruncate;
};

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;  // tokens[i] is the vocab entry of ids[i].
  bool truncated = false;           // Pieces were dropped to fit max_tokens.
};

class WordPieceTokenizer {
 public:
  using Options = WordPieceTokenizerOptions;

  // Loads a vocab file: one token per line, the line number (from 0) is the
  // id. A trailing "\r" is stripped from each line.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromVocabFile(
      const std::string& path, const Options& options = {});

  // Builds a tokenizer from in-memory vocab entries; vocab[i] has id i.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> Create(
      std::vector<std::string> vocab, const Options& options = {});

  WordPieceTokenizer(const WordPieceTokenizer&) = delete;
  WordPieceTokenizer& operator=(const WordPieceTokenizer&) = delete;

  absl::StatusOr<Encoding> Encode(absl::string_view text) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  const Options& options() const { return options_; }

  // The id of an exact vocab entry, if present.
  std::optional<int32_t> IdFor(absl::string_view token) const;
  // The vocab entry of `id`; OUT_OF_RANGE unless 0 <= id < vocab_size().
  absl::StatusOr<absl::string_view> TokenFor(int32_t id) const;

 private:
  using IdMap = absl::flat_hash_map<std::string, int32_t>;

  explicit WordPieceTokenizer(const Options& options);

  absl::Status InitVocab(std::vector<std::string> vocab);
  absl::StatusOr<int32_t> RequireSpecial(absl::string_view token) const;
  // Appends the WordPiece ids of one basic token to `ids`.
  void AppendWordPieces(const PreToken& word, std::vector<int32_t>* ids) const;
  // The id of the longest vocab piece word[start, end') with end' <= end;
  // sets *end to end'. Returns nullopt when no piece matches.
  std::optional<int32_t> LongestMatch(const PreToken& word, size_t start,
                                      size_t* end) const;

  Options options_;
  BertPreTokenizer pre_tokenizer_;
  std::vector<std::string> tokens_;
  IdMap ids_;               // Every entry.
  IdMap continuation_ids_;  // Entries starting with "##", keyed without it.
  size_t max_entry_bytes_ = 0;
  size_t max_continuation_bytes_ = 0;
  int32_t unk_id_ = -1;
  int32_t cls_id_ = -1;
  int32_t sep_id_ = -1;
  int32_t pad_id_ = -1;
};

}  // namespace fusion::text

#endif  // FUSIONSERVE_SERVER_TEXT_WORDPIECE_TOKENIZER_H_
