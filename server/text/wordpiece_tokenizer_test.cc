#include "server/text/wordpiece_tokenizer.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/text/bert_pre_tokenizer.h"
#include "server/text/unicode_util.h"

namespace fusion::text {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<std::string>& TestVocab() {
  static const auto* vocab = new std::vector<std::string>{
      "[PAD]",
      "[UNK]",
      "[CLS]",
      "[SEP]",
      "[MASK]",  // 0-4
      "hello",
      "world",
      "cafe",
      "un",
      "##aff",
      "##able",  // 5-10
      ",",
      "!",
      ".",
      "'",
      "[",
      "]",
      "\u4E2D",
      "\u56FD",  // 11-18
      "the",
      "run",
      "##ning",
      "##n",
      "r",
      "##u",
      "s",                         // 19-25
      "\u03BF\u03B4\u03BF\u03C2",  // 26: final sigma
      "\u03BF\u03B4\u03BF\u03C3",  // 27
      "i",
      "Hello",
      "caf\u00E9",
      "\u8C48",  // 28-31
      "\u1112",
      "##\u1161",
      "##\u11AB",
      "##s",  // 32-35 (jamo)
  };
  return *vocab;
}

std::string WriteTempFile(const std::string& name,
                          const std::vector<std::string>& lines,
                          const std::string& eol = "\n") {
  const std::string path =
      absl::StrCat(testing::TempDir(), "/", name, "_", ::getpid(), ".txt");
  std::ofstream out(path, std::ios::binary);
  for (const std::string& line : lines) out << line << eol;
  return path;
}

std::unique_ptr<WordPieceTokenizer> MakeTokenizer(
    const WordPieceTokenizer::Options& options = {}) {
  const std::string path = WriteTempFile("vocab", TestVocab());
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::FromVocabFile(path, options);
  std::remove(path.c_str());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

// The tokens of Encode(text), [CLS] and [SEP] included.
std::vector<std::string> Tokens(const WordPieceTokenizer& tokenizer,
                                absl::string_view text) {
  absl::StatusOr<Encoding> encoding = tokenizer.Encode(text);
  EXPECT_TRUE(encoding.ok()) << encoding.status();
  if (!encoding.ok()) return {};
  EXPECT_EQ(encoding->ids.size(), encoding->tokens.size());
  for (size_t i = 0; i < encoding->ids.size(); ++i) {
    EXPECT_EQ(*tokenizer.TokenFor(encoding->ids[i]), encoding->tokens[i]);
  }
  return encoding->tokens;
}

class WordPieceTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = MakeTokenizer();
    ASSERT_NE(tokenizer_, nullptr);
  }
  std::vector<std::string> Encode(absl::string_view text) {
    return Tokens(*tokenizer_, text);
  }
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
};

TEST_F(WordPieceTokenizerTest, Accessors) {
  EXPECT_EQ(tokenizer_->vocab_size(), static_cast<int>(TestVocab().size()));
  EXPECT_EQ(tokenizer_->pad_id(), 0);
  EXPECT_EQ(tokenizer_->unk_id(), 1);
  EXPECT_EQ(tokenizer_->cls_id(), 2);
  EXPECT_EQ(tokenizer_->sep_id(), 3);
  EXPECT_EQ(tokenizer_->IdFor("hello"), 5);
  EXPECT_EQ(tokenizer_->IdFor("nope"), std::nullopt);
  EXPECT_EQ(*tokenizer_->TokenFor(6), "world");
  EXPECT_EQ(tokenizer_->TokenFor(-1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(tokenizer_->TokenFor(tokenizer_->vocab_size()).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(WordPieceTokenizerTest, IdsAndTokens) {
  absl::StatusOr<Encoding> encoding = tokenizer_->Encode("Hello, world!");
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  EXPECT_THAT(encoding->ids, ElementsAre(2, 5, 11, 6, 12, 3));
  EXPECT_THAT(encoding->tokens,
              ElementsAre("[CLS]", "hello", ",", "world", "!", "[SEP]"));
  EXPECT_FALSE(encoding->truncated);
}

TEST_F(WordPieceTokenizerTest, Lowercases) {
  EXPECT_THAT(Encode("HeLLo WORLD"),
              ElementsAre("[CLS]", "hello", "world", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, StripsAccents) {
  EXPECT_THAT(Encode("Café"), ElementsAre("[CLS]", "cafe", "[SEP]"));
  EXPECT_THAT(Encode("CAFE\u0301"), ElementsAre("[CLS]", "cafe", "[SEP]"));
  EXPECT_THAT(Encode("h\u00e9llo w\u00f6rld"),
              ElementsAre("[CLS]", "hello", "world", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, LowercasesCapitalIWithDotAbove) {
  EXPECT_THAT(Encode("\u0130"), ElementsAre("[CLS]", "i", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, LowercasesFinalSigmaLikePython) {
  EXPECT_THAT(Encode("ΟΔΟΣ"), ElementsAre("[CLS]", "οδος", "[SEP]"));
  // The first sigma is not final: "." is case-ignorable and a cased letter
  // follows it (lowercasing sees the whole word; "." splits it only later).
  EXPECT_THAT(Encode("ΟΔΟΣ.ΟΔΟΣ"),
              ElementsAre("[CLS]", "οδοσ", ".", "οδος", "[SEP]"));
  EXPECT_THAT(Encode("ΟΔΟΣ ΟΔΟΣ"),
              ElementsAre("[CLS]", "οδος", "οδος", "[SEP]"));
  EXPECT_THAT(Encode("ΟΔΟΣΟΔΟΣ"), ElementsAre("[CLS]", "[UNK]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, KeepsCaseAndAccentsWhenNotLowercasing) {
  WordPieceTokenizer::Options options;
  options.lowercase = false;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(
      Tokens(*tokenizer, "Hello hello caf\u00E9 Caf\u00E9"),
      ElementsAre("[CLS]", "Hello", "hello", "caf\u00E9", "[UNK]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, SplitsOnPunctuation) {
  EXPECT_THAT(Encode("hello,world!!"),
              ElementsAre("[CLS]", "hello", ",", "world", "!", "!", "[SEP]"));
  EXPECT_THAT(Encode("the world's"),
              ElementsAre("[CLS]", "the", "world", "'", "s", "[SEP]"));
  // Unicode punctuation (Pd, Pi/Pf) and ASCII symbols split too; "€" (Sc)
  // does not.
  EXPECT_THAT(Encode("hello\u2014world"),
              ElementsAre("[CLS]", "hello", "[UNK]", "world", "[SEP]"));
  EXPECT_THAT(Encode("hello$world"),
              ElementsAre("[CLS]", "hello", "[UNK]", "world", "[SEP]"));
  EXPECT_THAT(Encode("hello\u20acworld"),
              ElementsAre("[CLS]", "[UNK]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, SpecialTokenTextIsOrdinaryText) {
  EXPECT_THAT(Encode("[SEP]"),
              ElementsAre("[CLS]", "[", "[UNK]", "]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, SpacesAroundCjkIdeographs) {
  EXPECT_THAT(Encode("hello中国world"),
              ElementsAre("[CLS]", "hello", "中", "国", "world", "[SEP]"));
  // Compatibility ideographs are CJK and then NFD-normalized.
  EXPECT_THAT(Encode("\uF900"), ElementsAre("[CLS]", "\u8C48", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, CjkSpacingCanBeDisabled) {
  WordPieceTokenizer::Options options;
  options.tokenize_cjk_chars = false;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(Tokens(*tokenizer, "中国 中"),
              ElementsAre("[CLS]", "[UNK]", "中", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, DecomposesHangul) {
  EXPECT_THAT(Encode("\uD55C"),  // HANGUL SYLLABLE HAN
              ElementsAre("[CLS]", "\u1112", "##\u1161", "##\u11AB", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, DropsControlCharacters) {
  // Dropped characters join their neighbours; they do not separate words.
  EXPECT_THAT(Encode("hel\x01lo wor\u00adld\u200b"),
              ElementsAre("[CLS]", "hello", "world", "[SEP]"));
  EXPECT_THAT(Encode(std::string("hel\0lo", 6)),
              ElementsAre("[CLS]", "hello", "[SEP]"));
  EXPECT_THAT(Encode("hel\uFFFDlo \uE000"),
              ElementsAre("[CLS]", "hello", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, WhitespaceSeparatesWords) {
  EXPECT_THAT(Encode(" hello\tworld\r\nhello\u3000world\u2028hello\u00a0"),
              ElementsAre("[CLS]", "hello", "world", "hello", "world", "hello",
                          "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, ContinuationPieces) {
  EXPECT_THAT(Encode("unaffable"),
              ElementsAre("[CLS]", "un", "##aff", "##able", "[SEP]"));
  // Longest match first: "run" + "##ning", not "r" + "##u" + "##n"...
  EXPECT_THAT(Encode("running runs"),
              ElementsAre("[CLS]", "run", "##ning", "run", "##s", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, UnknownWordBecomesOneUnk) {
  EXPECT_THAT(Encode("xyz hello"),
              ElementsAre("[CLS]", "[UNK]", "hello", "[SEP]"));
  // A word that matches partially is dropped whole, not piece by piece.
  EXPECT_THAT(Encode("unaffx"), ElementsAre("[CLS]", "[UNK]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, LongWordBecomesUnk) {
  WordPieceTokenizer::Options options;
  options.max_chars_per_word = 5;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(Tokens(*tokenizer, "hello unaffable"),
              ElementsAre("[CLS]", "hello", "[UNK]", "[SEP]"));
  // Code points count, not bytes: "οδος" is 4 code points, 8 bytes.
  EXPECT_THAT(Tokens(*tokenizer, "οδος"),
              ElementsAre("[CLS]", "οδος", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, DefaultMaxCharsPerWordIs100) {
  const std::string word100 = "r" + std::string(99, 'u');
  // "r", 99 × "##u", [CLS] and [SEP].
  EXPECT_EQ(Encode(word100).size(), 102u);
  EXPECT_THAT(Encode(word100 + "u"), ElementsAre("[CLS]", "[UNK]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, EmptyAndWhitespaceOnlyText) {
  EXPECT_THAT(Encode(""), ElementsAre("[CLS]", "[SEP]"));
  EXPECT_THAT(Encode(" \t\n\u3000"), ElementsAre("[CLS]", "[SEP]"));
  EXPECT_THAT(Encode("\u0301\x01"), ElementsAre("[CLS]", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, Truncates) {
  WordPieceTokenizer::Options options;
  options.max_tokens = 4;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);

  absl::StatusOr<Encoding> fits = tokenizer->Encode("hello world");
  ASSERT_TRUE(fits.ok());
  EXPECT_THAT(fits->tokens, ElementsAre("[CLS]", "hello", "world", "[SEP]"));
  EXPECT_FALSE(fits->truncated);

  absl::StatusOr<Encoding> cut = tokenizer->Encode("hello world hello");
  ASSERT_TRUE(cut.ok());
  EXPECT_THAT(cut->tokens, ElementsAre("[CLS]", "hello", "world", "[SEP]"));
  EXPECT_THAT(cut->ids, ElementsAre(2, 5, 6, 3));
  EXPECT_TRUE(cut->truncated);

  // Truncation counts pieces, so it may cut inside a word.
  EXPECT_THAT(Tokens(*tokenizer, "unaffable"),
              ElementsAre("[CLS]", "un", "##aff", "[SEP]"));
}

TEST_F(WordPieceTokenizerTest, MaxTokensTwoKeepsOnlySpecialTokens) {
  WordPieceTokenizer::Options options;
  options.max_tokens = 2;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);
  absl::StatusOr<Encoding> encoding = tokenizer->Encode("hello");
  ASSERT_TRUE(encoding.ok());
  EXPECT_THAT(encoding->ids, ElementsAre(2, 3));
  EXPECT_TRUE(encoding->truncated);
}

TEST_F(WordPieceTokenizerTest, RejectPolicy) {
  WordPieceTokenizer::Options options;
  options.max_tokens = 4;
  options.truncation = TruncationPolicy::kReject;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);

  EXPECT_TRUE(tokenizer->Encode("hello world").ok());
  absl::StatusOr<Encoding> rejected = tokenizer->Encode("hello world hello");
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rejected.status().message(), HasSubstr("max_tokens=4"));
  EXPECT_EQ(tokenizer->Encode("unaffable").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WordPieceTokenizerTest, InvalidUtf8NamesByteOffset) {
  struct Case {
    std::string text;
    std::string offset;
  };
  const Case cases[] = {
      {"ab\xff"
       "cd",
       "byte offset 2"},
      {"hello \xc3", "byte offset 6"},         // Truncated sequence.
      {"\xc0\xaf", "byte offset 0"},           // Overlong "/".
      {"é\xed\xa0\x80", "byte offset 2"},      // Surrogate U+D800.
      {"x\xf4\x90\x80\x80", "byte offset 1"},  // > U+10FFFF.
      {"中\x80", "byte offset 3"},             // Stray continuation.
  };
  for (const Case& c : cases) {
    absl::StatusOr<Encoding> encoding = tokenizer_->Encode(c.text);
    EXPECT_EQ(encoding.status().code(), absl::StatusCode::kInvalidArgument)
        << c.offset;
    EXPECT_THAT(encoding.status().message(), HasSubstr(c.offset));
  }
}

TEST_F(WordPieceTokenizerTest, InvalidUtf8AfterTruncationPointStillFails) {
  WordPieceTokenizer::Options options;
  options.max_tokens = 3;
  std::unique_ptr<WordPieceTokenizer> tokenizer = MakeTokenizer(options);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("hello world \xff").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WordPieceTokenizerTest, ConcurrentEncodeIsConsistent) {
  const std::string text = "Hello, café world! unaffable 中国 running";
  const std::vector<std::string> expected = Encode(text);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        absl::StatusOr<Encoding> encoding = tokenizer_->Encode(text);
        if (!encoding.ok() || encoding->tokens != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ElementsAre(0, 0, 0, 0));
}

// --- Vocab and options validation ----------------------------------------

TEST(WordPieceTokenizerCreateTest, MissingSpecialTokenIsAnError) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "hello"};
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::Create(vocab);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("[SEP]"));
}

TEST(WordPieceTokenizerCreateTest, CustomSpecialTokens) {
  WordPieceTokenizer::Options options;
  options.unk_token = "<unk>";
  options.cls_token = "<s>";
  options.sep_token = "</s>";
  options.pad_token = "<pad>";
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::Create({"<pad>", "<s>", "</s>", "<unk>", "hi"},
                                 options);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  absl::StatusOr<Encoding> encoding = (*tokenizer)->Encode("hi yo");
  ASSERT_TRUE(encoding.ok());
  EXPECT_THAT(encoding->ids, ElementsAre(1, 4, 3, 2));
}

TEST(WordPieceTokenizerCreateTest, DuplicateEntryIsAnError) {
  std::vector<std::string> vocab = TestVocab();
  vocab.push_back("hello");
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::Create(vocab);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("duplicate"));
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("\"hello\""));
  EXPECT_THAT(tokenizer.status().message(),
              HasSubstr(absl::StrCat("lines 6 and ", vocab.size())));
}

TEST(WordPieceTokenizerCreateTest, InvalidUtf8EntryIsAnError) {
  std::vector<std::string> vocab = TestVocab();
  vocab.push_back("bad\xff");
  EXPECT_EQ(WordPieceTokenizer::Create(vocab).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WordPieceTokenizerCreateTest, EmptyVocabIsAnError) {
  EXPECT_EQ(WordPieceTokenizer::Create({}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WordPieceTokenizerCreateTest, InvalidOptionsAreErrors) {
  WordPieceTokenizer::Options options;
  options.max_tokens = 1;
  EXPECT_EQ(WordPieceTokenizer::Create(TestVocab(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = {};
  options.max_chars_per_word = 0;
  EXPECT_EQ(WordPieceTokenizer::Create(TestVocab(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WordPieceTokenizerCreateTest, MissingFileIsNotFound) {
  EXPECT_EQ(WordPieceTokenizer::FromVocabFile("/nonexistent/vocab.txt")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(WordPieceTokenizerCreateTest, FileErrorsNameThePath) {
  const std::string path = WriteTempFile("dup", {"[UNK]", "[UNK]"});
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::FromVocabFile(path);
  std::remove(path.c_str());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path));
}

TEST(WordPieceTokenizerCreateTest, ReadsCrlfVocab) {
  const std::string path = WriteTempFile("crlf", TestVocab(), "\r\n");
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::FromVocabFile(path);
  std::remove(path.c_str());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->IdFor("hello"), 5);
}

// --- Basic tokenization ---------------------------------------------------

std::u32string Nfd(std::u32string text) {
  std::vector<char32_t> cps(text.begin(), text.end()), scratch;
  internal::DecomposeCanonical(&cps, &scratch);
  return std::u32string(cps.begin(), cps.end());
}

TEST(CanonicalOrderingTest, SortsEachRunOfMarksByCombiningClassStably) {
  // Classes: U+0301 and U+0300 230, U+0316 220, U+0327 202.
  EXPECT_EQ(Nfd(U"c\u0301\u0327"), U"c\u0327\u0301");
  EXPECT_EQ(Nfd(U"a\u0301\u0300\u0316"), U"a\u0316\u0301\u0300");
  // A starter ends a run: marks never move across it.
  EXPECT_EQ(Nfd(U"\u0301b\u0316"), U"\u0301b\u0316");
  // U+1E09 decomposes to c, U+0327, U+0301, already in order.
  EXPECT_EQ(Nfd(U"\u1E09\u0316"), U"c\u0327\u0316\u0301");
}

TEST(CanonicalOrderingTest, LongRunOfMarksIsSortedQuickly) {
  // 200k marks of alternating class, one run: an insertion sort needs
  // ~5e9 swaps here (80 s measured); sorting the run takes ~0.1 s.
  std::u32string marks;
  for (int i = 0; i < 100000; ++i) marks += U"\u0301\u0316";
  const auto start = std::chrono::steady_clock::now();
  const std::u32string sorted = Nfd(U"a" + marks);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_EQ(sorted, U"a" + std::u32string(100000, U'\u0316') +
                        std::u32string(100000, U'\u0301'));
}

TEST_F(WordPieceTokenizerTest, WordOfAMillionBytesOfMarksIsOneQuickUnk) {
  std::string word = "x";
  for (int i = 0; i < 250000; ++i) word += "\u0301\u0316";  // 1 MB
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(Encode(word), ElementsAre("[CLS]", "[UNK]", "[SEP]"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(BertPreTokenizerTest, MatchesBertBasicTokenizer) {
  BertPreTokenizer pre_tokenizer;
  EXPECT_THAT(*pre_tokenizer.Tokenize("  Hello,  WORLD!! "),
              ElementsAre("hello", ",", "world", "!", "!"));
  EXPECT_THAT(*pre_tokenizer.Tokenize("naïve ÅNGSTRÖM"),
              ElementsAre("naive", "angstrom"));
  EXPECT_THAT(*pre_tokenizer.Tokenize("a\u037Eb"),  // Greek question mark.
              ElementsAre("a", ";", "b"));
  EXPECT_THAT(*pre_tokenizer.Tokenize("\u0301"), IsEmpty());
}

TEST(BertPreTokenizerTest, StopsWhenVisitorSaysSo) {
  BertPreTokenizer pre_tokenizer;
  int visits = 0;
  absl::Status status = pre_tokenizer.Run(
      "a b c d", [&](const PreToken&) { return ++visits < 2; });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(visits, 2);
}

// --- Golden ids from the Python reference (model/wordpiece.py) -------------

TEST(WordPieceGoldenTest, MatchesPythonReferenceOnEveryLine) {
  const std::string dir = std::string(FUSION_SOURCE_DIR) + "/models/fusion/1";
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::FromVocabFile(dir + "/vocab.txt");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::ifstream golden(dir + "/golden.jsonl");
  ASSERT_TRUE(golden.good()) << "missing " << dir << "/golden.jsonl";

  std::string line;
  int lines = 0;
  int mismatches = 0;
  while (std::getline(golden, line)) {
    if (line.empty()) continue;
    ++lines;
    const nlohmann::json record = nlohmann::json::parse(line);
    const std::string text = record.at("text").get<std::string>();
    const auto expected = record.at("token_ids").get<std::vector<int32_t>>();
    absl::StatusOr<Encoding> encoding = (*tokenizer)->Encode(text);
    ASSERT_TRUE(encoding.ok()) << encoding.status() << " line " << lines;
    const bool tokens_match =
        !record.contains("tokens") ||
        record["tokens"].get<std::vector<std::string>>() == encoding->tokens;
    if (encoding->ids != expected || !tokens_match) {
      ++mismatches;
      ADD_FAILURE() << "golden line " << lines << " (request_id "
                    << record.value("request_id", nlohmann::json()).dump()
                    << "), text " << nlohmann::json(text).dump()
                    << "\n  expected " << nlohmann::json(expected).dump()
                    << "\n  got      " << nlohmann::json(encoding->ids).dump();
    }
  }
  EXPECT_GT(lines, 0) << "golden.jsonl is empty";
  EXPECT_EQ(mismatches, 0) << "of " << lines << " lines";
}

}  // namespace
}  // namespace fusion::text
