#include "server/api/request_validation.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "google/protobuf/text_format.h"

namespace fusion::api {
namespace {

using fusion::v1::ScoreRequest;
using text::TruncationPolicy;

// ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, hello 4, world 5, ##s 6.
const std::vector<std::string> kVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                         "hello", "world", "##s"};

// Three features, the middle one optional; max_tokens 8; two priorities.
constexpr char kConfig[] = R"pb(
  name: "m"
  version: 1
  max_tokens: 8
  features { name: "amount" }
  features { name: "age" allow_missing: true default_value: 7.5 }
  features { name: "count" }
  batching { priority_levels: 2 }
)pb";

// Every feature optional.
constexpr char kOptionalConfig[] = R"pb(
  name: "m"
  version: 1
  max_tokens: 8
  features { name: "x" allow_missing: true default_value: -1 }
  features { name: "y" allow_missing: true default_value: 2 }
  batching { priority_levels: 1 }
)pb";

// A model as validation sees it, in memory: no Servable, no threads.
class TestModel {
 public:
  explicit TestModel(
      const char* config_text = kConfig,
      TruncationPolicy truncation = TruncationPolicy::kTruncate) {
    EXPECT_TRUE(
        google::protobuf::TextFormat::ParseFromString(config_text, &config_));
    text::WordPieceTokenizer::Options options;
    options.max_tokens = config_.max_tokens();
    options.truncation = truncation;
    auto tokenizer = text::WordPieceTokenizer::Create(kVocab, options);
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
    for (int i = 0; i < config_.features_size(); ++i) {
      index_[config_.features(i).name()] = i;
    }
  }
  TestModel(const TestModel&) = delete;  // signature() points into it
  TestModel& operator=(const TestModel&) = delete;

  ModelSignature signature() const {
    return ModelSignature{
        config_, *tokenizer_,
        [this](const std::string& name) -> std::optional<int> {
          auto it = index_.find(name);
          if (it == index_.end()) return std::nullopt;
          return it->second;
        }};
  }

 private:
  fusion::v1::ModelConfig config_;
  std::unique_ptr<text::WordPieceTokenizer> tokenizer_;
  std::map<std::string, int> index_;
};

ScoreRequest Parse(const std::string& text) {
  ScoreRequest request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &request))
      << text;
  return request;
}

absl::StatusOr<ValidatedRequest> Validate(
    const std::string& request_text, const TestModel& model = TestModel()) {
  return ValidateScoreRequest(Parse(request_text), model.signature());
}

// The required features, so that a case fails only where it means to.
const std::string kFeatures =
    R"pb(features { key: "amount" value: 1 }
         features { key: "count" value: 2 })pb";

struct ErrorCase {
  std::string name;
  std::string request;  // text format
  TruncationPolicy truncation;
  std::string message_prefix;
};

// gtest shows a case by its name rather than its bytes.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class ValidationErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ValidationErrorTest, RejectsWithInvalidArgumentNamingTheField) {
  const ErrorCase& c = GetParam();
  TestModel model(kConfig, c.truncation);
  auto validated = Validate(c.request, model);
  ASSERT_FALSE(validated.ok()) << c.request;
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(validated.status().message(), c.message_prefix))
      << "got:  " << validated.status().message()
      << "\nwant: " << c.message_prefix << "...";
}

const std::string kNineIds = "token_ids: [2, 4, 4, 4, 4, 4, 4, 4, 3] ";
// 7 words: [CLS] + 7 + [SEP] = 9 tokens, one more than max_tokens.
const std::string kLongText =
    "text: 'hello hello hello hello hello hello hello' ";

INSTANTIATE_TEST_SUITE_P(
    Table, ValidationErrorTest,
    testing::Values(
        // Input: exactly one of text and token_ids.
        ErrorCase{"TextAndTokenIds",
                  "text: 'hello' token_ids: [2, 3] " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "text and token_ids: set exactly one, not both"},
        ErrorCase{"NeitherTextNorTokenIds", kFeatures,
                  TruncationPolicy::kTruncate,
                  "text or token_ids: set exactly one (neither is set)"},
        ErrorCase{"EmptyTextIsSet", "text: '' token_ids: [2, 3] " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "text and token_ids: set exactly one, not both"},
        // Token ids: in the vocabulary, at most max_tokens of them.
        ErrorCase{"TokenIdPastVocab", "token_ids: [2, 7, 3] " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "token_ids[1]: id 7 is outside the vocabulary [0, 7)"},
        ErrorCase{"NegativeTokenId", "token_ids: [-1, 3] " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "token_ids[0]: id -1 is outside the vocabulary [0, 7)"},
        // Ids are never truncated, whatever the policy says of text.
        ErrorCase{"TooManyIdsTruncatePolicy", kNineIds + kFeatures,
                  TruncationPolicy::kTruncate,
                  "token_ids: 9 ids exceed the model's max_tokens (8)"},
        ErrorCase{"TooManyIdsRejectPolicy", kNineIds + kFeatures,
                  TruncationPolicy::kReject,
                  "token_ids: 9 ids exceed the model's max_tokens (8)"},
        ErrorCase{"LongTextRejectPolicy", kLongText + kFeatures,
                  TruncationPolicy::kReject,
                  "text: text is longer than max_tokens=8 tokens ([CLS] and "
                  "[SEP] included)"},
        // Features: exactly one of the map and the vector.
        ErrorCase{"FeaturesAndVector",
                  "text: 'hello' feature_vector: [1, 2, 3] " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "features and feature_vector: set exactly one, not both"},
        ErrorCase{"NoFeaturesWhileSomeAreRequired", "text: 'hello'",
                  TruncationPolicy::kTruncate,
                  "features or feature_vector: set exactly one (neither is "
                  "set)"},
        // The vector: every feature, in model order, finite.
        ErrorCase{"VectorTooShort", "text: 'hello' feature_vector: [1, 2]",
                  TruncationPolicy::kTruncate,
                  "feature_vector: expected 3 values in model order, got 2"},
        ErrorCase{"VectorTooLong", "text: 'hello' feature_vector: [1, 2, 3, 4]",
                  TruncationPolicy::kTruncate,
                  "feature_vector: expected 3 values in model order, got 4"},
        ErrorCase{"VectorNaN", "text: 'hello' feature_vector: [1, nan, 3]",
                  TruncationPolicy::kTruncate,
                  "feature_vector[1] (age): value is not finite"},
        ErrorCase{"VectorInfinity",
                  "text: 'hello' feature_vector: [1, 2, -inf]",
                  TruncationPolicy::kTruncate,
                  "feature_vector[2] (count): value is not finite"},
        // The map: known names, finite values, every required one.
        ErrorCase{
            "UnknownFeature",
            "text: 'hello' features { key: 'bogus' value: 1 } " + kFeatures,
            TruncationPolicy::kTruncate,
            "features['bogus']: unknown feature (see GetModelMetadata "
            "for the model's features)"},
        ErrorCase{"FeatureInfinity",
                  "text: 'hello' features { key: 'amount' value: inf } "
                  "features { key: 'count' value: 2 }",
                  TruncationPolicy::kTruncate,
                  "features['amount']: value is not finite"},
        ErrorCase{
            "OptionalFeatureNaN",
            "text: 'hello' features { key: 'age' value: nan } " + kFeatures,
            TruncationPolicy::kTruncate,
            "features['age']: value is not finite"},
        ErrorCase{"MissingRequiredFeatures",
                  "text: 'hello' features { key: 'age' value: 1 }",
                  TruncationPolicy::kTruncate,
                  "features: missing required feature(s) 'amount', 'count'"},
        ErrorCase{"MissingOneRequiredFeature",
                  "text: 'hello' features { key: 'amount' value: 1 }",
                  TruncationPolicy::kTruncate,
                  "features: missing required feature(s) 'count'"},
        // Priority: below the model's levels; checked before the input.
        ErrorCase{"PriorityPastLevels",
                  "priority: 2 text: 'hello' " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "priority: 2 is beyond the model's 2 levels (0 is highest)"},
        ErrorCase{"PriorityMaxUint32",
                  "priority: 4294967295 text: 'hello' " + kFeatures,
                  TruncationPolicy::kTruncate,
                  "priority: 4294967295 is beyond the model's 2 levels"},
        ErrorCase{"PriorityBeforeInput", "priority: 3",
                  TruncationPolicy::kTruncate, "priority: 3 is beyond"},
        // Attention: a value the API does not define (proto3 keeps it).
        ErrorCase{"UnknownAttention", "attention: 7 text: 'hello' " + kFeatures,
                  TruncationPolicy::kTruncate, "attention: unknown value 7"}),
    [](const testing::TestParamInfo<ErrorCase>& info) {
      return info.param.name;
    });

TEST(ValidateScoreRequestTest, TextThatIsNotUtf8NamesTheField) {
  ScoreRequest request = Parse(kFeatures);
  request.set_text("caf\xC3");  // a truncated two-byte sequence
  TestModel model;
  auto validated = ValidateScoreRequest(request, model.signature());
  ASSERT_FALSE(validated.ok());
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(validated.status().message(),
                               "text: invalid UTF-8 at byte offset"))
      << validated.status().message();
}

TEST(ValidateScoreRequestTest, TextIsTokenizedAndFeaturesTakeModelOrder) {
  auto validated = Validate("text: 'Hello WORLDS' " + kFeatures);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.token_ids, (std::vector<int32_t>{2, 4, 5, 6, 3}));
  EXPECT_FALSE(validated->truncated);
  // amount, age (absent: its default), count.
  EXPECT_EQ(validated->input.features, (std::vector<float>{1, 7.5, 2}));
  EXPECT_EQ(validated->input.attention, runtime::AttentionDetail::kNone);
  EXPECT_TRUE(validated->tokens.empty());  // only kept when attention is asked
}

TEST(ValidateScoreRequestTest, OptionalFeatureGivenOverridesItsDefault) {
  auto validated = Validate(
      "text: 'hello' features { key: 'count' value: 2 } "
      "features { key: 'age' value: 30 } features { key: 'amount' value: 1 }");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.features, (std::vector<float>{1, 30, 2}));
}

TEST(ValidateScoreRequestTest, FeatureVectorIsTakenAsIs) {
  auto validated = Validate("text: 'hello' feature_vector: [4, 5, -6]");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.features, (std::vector<float>{4, 5, -6}));
}

TEST(ValidateScoreRequestTest, NoFeaturesPassWhenEveryFeatureMayBeMissing) {
  TestModel model(kOptionalConfig);
  auto validated = Validate("text: 'hello'", model);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.features, (std::vector<float>{-1, 2}));
}

TEST(ValidateScoreRequestTest, AttentionRequestFillsTokensFromText) {
  auto validated =
      Validate("attention: ATTENTION_MEAN text: 'hello worlds' " + kFeatures);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.attention, runtime::AttentionDetail::kMean);
  EXPECT_EQ(validated->tokens, (std::vector<std::string>{
                                   "[CLS]", "hello", "world", "##s", "[SEP]"}));
}

TEST(ValidateScoreRequestTest, AttentionRequestFillsTokensFromIds) {
  auto validated = Validate(
      "attention: ATTENTION_PER_HEAD token_ids: [2, 5, 1, 6, 3] " + kFeatures);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.attention, runtime::AttentionDetail::kPerHead);
  EXPECT_EQ(validated->input.token_ids, (std::vector<int32_t>{2, 5, 1, 6, 3}));
  EXPECT_EQ(validated->tokens, (std::vector<std::string>{
                                   "[CLS]", "world", "[UNK]", "##s", "[SEP]"}));
}

TEST(ValidateScoreRequestTest, MaxTokensIdsPass) {
  auto validated = Validate("token_ids: [2, 4, 4, 4, 4, 4, 4, 3] " + kFeatures);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.token_ids.size(), 8u);
  EXPECT_FALSE(validated->truncated);
}

TEST(ValidateScoreRequestTest, LongTextIsTruncatedUnderTruncatePolicy) {
  auto validated = Validate(kLongText + kFeatures);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_TRUE(validated->truncated);
  EXPECT_EQ(validated->input.token_ids,
            (std::vector<int32_t>{2, 4, 4, 4, 4, 4, 4, 3}));
}

TEST(ValidateScoreRequestTest, LowestPriorityLevelPasses) {
  auto validated = Validate("priority: 1 text: 'hello' " + kFeatures);
  EXPECT_TRUE(validated.ok()) << validated.status();
}

// Hand-written wire bytes: a tag (field number, wire type) and its value.
std::string Tag(int number, int wire_type) {
  return std::string(1, static_cast<char>(number << 3 | wire_type));
}
std::string LengthDelimited(int number, const std::string& bytes) {
  return Tag(number, 2) + static_cast<char>(bytes.size()) + bytes;
}

// The required features and token ids, as wire bytes: a valid request.
std::string ValidRequestBytes() {
  std::string bytes;
  EXPECT_TRUE(
      Parse("token_ids: [2, 4, 3] " + kFeatures).SerializeToString(&bytes));
  return bytes;
}

absl::StatusOr<ValidatedRequest> ValidateBytes(const std::string& bytes) {
  ScoreRequest request;
  EXPECT_TRUE(request.ParseFromString(bytes));
  TestModel model;
  return ValidateScoreRequest(request, model.signature());
}

TEST(CheckWireTypesTest, UnknownFieldNumbersAreIgnored) {
  // Field 1000 as a varint, field 99 length-delimited: a newer client's.
  const std::string bytes =
      ValidRequestBytes() + "\xC0\x3E\x05" + LengthDelimited(99, "future");
  auto validated = ValidateBytes(bytes);
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.token_ids, (std::vector<int32_t>{2, 4, 3}));
}

TEST(CheckWireTypesTest, DeclaredFieldWithAnotherWireTypeIsRejected) {
  // text (field 4, a string) sent as a varint: protobuf would leave it unset.
  auto validated = ValidateBytes(ValidRequestBytes() + Tag(4, 0) + "\x07");
  ASSERT_FALSE(validated.ok());
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(validated.status().message(),
            "text: field 4 sent with wire type varint, declared string");
  // priority (field 9, a varint) sent length-delimited.
  validated = ValidateBytes(ValidRequestBytes() + LengthDelimited(9, "\x01"));
  ASSERT_FALSE(validated.ok());
  EXPECT_EQ(validated.status().message(),
            "priority: field 9 sent with wire type length-delimited, declared "
            "uint32");
}

TEST(CheckWireTypesTest, UnpackedRepeatedFieldIsNotAWireTypeError) {
  // token_ids arrive packed; one more as a lone varint is the unpacked form.
  auto validated = ValidateBytes(ValidRequestBytes() + Tag(5, 0) + "\x04");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->input.token_ids, (std::vector<int32_t>{2, 4, 3, 4}));
}

TEST(CheckWireTypesTest, NamesThePathOfANestedMessage) {
  // ModelConfig.tokenizer (a message) whose max_chars_per_word (field 8, an
  // int32) came length-delimited.
  fusion::v1::ModelConfig config;
  ASSERT_TRUE(
      config.ParseFromString(LengthDelimited(9, LengthDelimited(8, "x"))));
  absl::Status status = CheckWireTypes(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "tokenizer."))
      << status.message();
}

TEST(QuoteClientTextTest, ShortTextIsKept) {
  EXPECT_EQ(QuoteClientText("amount"), "amount");
  EXPECT_EQ(QuoteClientText(std::string(kMaxQuotedBytes, 'a')),
            std::string(kMaxQuotedBytes, 'a'));
}

TEST(QuoteClientTextTest, LongTextIsCutAtACharacterAndSized) {
  EXPECT_EQ(QuoteClientText(std::string(100000, 'a')),
            std::string(kMaxQuotedBytes, 'a') + "...(100000 bytes)");
  // U+00E9 is two bytes: the cut never splits one.
  std::string e_acute;
  for (int i = 0; i < 50; ++i) e_acute += "\xC3\xA9";
  const std::string quoted = QuoteClientText("a" + e_acute);
  EXPECT_EQ(quoted,
            "a" + e_acute.substr(0, kMaxQuotedBytes - 2) + "...(101 bytes)");
}

TEST(ValidateScoreRequestTest, UnknownFeatureWithAHugeNameIsQuotedShort) {
  ScoreRequest request = Parse("text: 'hello' " + kFeatures);
  (*request.mutable_features())[std::string(1 << 20, 'x')] = 1.0f;
  TestModel model;
  auto validated = ValidateScoreRequest(request, model.signature());
  ASSERT_FALSE(validated.ok());
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(validated.status().message().size(), 200u);
  EXPECT_TRUE(absl::StrContains(validated.status().message(),
                                "...(1048576 bytes)']: unknown feature"))
      << validated.status().message();
}

}  // namespace
}  // namespace fusion::api
