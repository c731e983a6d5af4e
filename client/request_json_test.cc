#include "client/request_json.h"

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

using nlohmann::json;

TEST(ParseFeatureAssignment, Valid) {
  auto p = ParseFeatureAssignment("amount=120.5");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->first, "amount");
  EXPECT_FLOAT_EQ(p->second, 120.5f);
  auto spaced = ParseFeatureAssignment(" hour_of_day = -3e1 ");
  ASSERT_TRUE(spaced.ok());
  EXPECT_EQ(spaced->first, "hour_of_day");
  EXPECT_FLOAT_EQ(spaced->second, -30.0f);
}

TEST(ParseFeatureAssignment, ErrorsSayWhatIsWrong) {
  auto no_eq = ParseFeatureAssignment("amount");
  EXPECT_EQ(no_eq.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_eq.status().message().find("NAME=VALUE"), std::string::npos);
  auto no_name = ParseFeatureAssignment("=3");
  EXPECT_NE(no_name.status().message().find("name"), std::string::npos);
  auto not_number = ParseFeatureAssignment("amount=12abc");
  EXPECT_NE(not_number.status().message().find("not a number"),
            std::string::npos);
  EXPECT_FALSE(ParseFeatureAssignment("amount=").ok());
  EXPECT_FALSE(ParseFeatureAssignment("amount=nan").ok());
  EXPECT_FALSE(ParseFeatureAssignment("amount=inf").ok());
}

TEST(AddFeatureAssignments, RejectsDuplicates) {
  fusion::v1::ScoreRequest r;
  EXPECT_TRUE(AddFeatureAssignments({"a=1", "b=2"}, &r).ok());
  EXPECT_EQ(r.features().size(), 2u);
  fusion::v1::ScoreRequest dup;
  absl::Status s = AddFeatureAssignments({"a=1", "a=2"}, &dup);
  EXPECT_NE(s.message().find("twice"), std::string::npos);
}

TEST(ParseAttention, Names) {
  EXPECT_EQ(*ParseAttention("none"), fusion::v1::ATTENTION_NONE);
  EXPECT_EQ(*ParseAttention("MEAN"), fusion::v1::ATTENTION_MEAN);
  EXPECT_EQ(*ParseAttention("per-head"), fusion::v1::ATTENTION_PER_HEAD);
  EXPECT_EQ(*ParseAttention("per_head"), fusion::v1::ATTENTION_PER_HEAD);
  EXPECT_FALSE(ParseAttention("max").ok());
}

TEST(RequestFromJson, TextAndFeatures) {
  auto r = ParseRequestLine(
      R"({"request_id": "r1", "text": "hello", "features": {"amount": 3.5},)"
      R"( "attention": "mean", "model": "fusion", "priority": 1})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id(), "r1");
  EXPECT_TRUE(r->has_text());
  EXPECT_EQ(r->text(), "hello");
  EXPECT_FLOAT_EQ(r->features().at("amount"), 3.5f);
  EXPECT_EQ(r->attention(), fusion::v1::ATTENTION_MEAN);
  EXPECT_EQ(r->model(), "fusion");
  EXPECT_EQ(r->priority(), 1u);
}

TEST(RequestFromJson, GoldenLinePrefersTextAndNamedFeatures) {
  auto r = ParseRequestLine(
      R"({"request_id": 7, "text": "", "features": {"a": 1}, )"
      R"("feature_vector": [1, 2], "token_ids": [2, 3], "tokens": ["x"],)"
      R"( "probabilities": [0.5, 0.5]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id(), "7");
  EXPECT_TRUE(r->has_text());
  EXPECT_EQ(r->token_ids_size(), 0);
  EXPECT_EQ(r->feature_vector_size(), 0);
  EXPECT_EQ(r->features().size(), 1u);
}

TEST(RequestFromJson, TokenIdsAndVector) {
  auto r = ParseRequestLine(
      R"({"token_ids": [2, 10, 3], "feature_vector": [1.5, 0], "attention": 2})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_text());
  EXPECT_EQ(r->token_ids_size(), 3);
  EXPECT_EQ(r->feature_vector_size(), 2);
  EXPECT_EQ(r->attention(), fusion::v1::ATTENTION_PER_HEAD);
}

TEST(RequestFromJson, ErrorsNameTheKey) {
  auto expect_error = [](const char* line, const char* key) {
    auto r = ParseRequestLine(line);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(key), std::string::npos)
        << r.status().message();
  };
  expect_error("{not json", "JSON");
  expect_error("[1, 2]", "object");
  expect_error(R"({"text": 5})", "text");
  expect_error(R"({"features": {"amount": "x"}})", "features['amount']");
  expect_error(R"({"features": [1]})", "features");
  expect_error(R"({"feature_vector": [1, "a"]})", "feature_vector[1]");
  expect_error(R"({"token_ids": [2, 3.5]})", "token_ids[1]");
  expect_error(R"({"attention": "max"})", "attention");
  expect_error(R"({"priority": -1})", "priority");
  expect_error(R"({"request_id": [1]})", "request_id");
  expect_error(R"({"features": {"a": 1e300}})", "features['a']");
}

TEST(ResponseToJson, NestsAttentionByShape) {
  fusion::v1::ScoreResponse r;
  r.set_request_id("x");
  r.set_score(0.1060673f);
  r.add_probabilities(0.8939327f);
  r.add_probabilities(0.1060673f);
  r.mutable_timing()->set_batch_size(4);
  auto* a = r.mutable_attention();
  a->add_tokens("[CLS]");
  a->add_tokens("[SEP]");
  for (const char* f : {"f1", "f2", "f3"}) a->add_feature_names(f);
  for (int i = 0; i < 6; ++i) a->add_text_to_features(i);
  a->add_text_to_features_shape(2);
  a->add_text_to_features_shape(3);
  json j = ResponseToJson(r);
  EXPECT_EQ(j["request_id"], "x");
  EXPECT_EQ(j["score"].get<double>(), 0.1060673);  // shortest float form
  EXPECT_EQ(j["timing"]["batch_size"], 4);
  EXPECT_EQ(j["attention"]["text_to_features"],
            json::parse("[[0, 1, 2], [3, 4, 5]]"));
  EXPECT_EQ(j["attention"]["tokens"], json::parse(R"(["[CLS]", "[SEP]"])"));
  EXPECT_EQ(j["attention"]["features_to_text"], json::array());
}

TEST(ResponseToJson, ThreeDimensionalAndNoAttention) {
  fusion::v1::ScoreResponse r;
  auto* a = r.mutable_attention();
  for (int i = 0; i < 8; ++i) a->add_features_to_text(i);
  for (int d : {2, 2, 2}) a->add_features_to_text_shape(d);
  EXPECT_EQ(ResponseToJson(r)["attention"]["features_to_text"],
            json::parse("[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]"));
  EXPECT_FALSE(
      ResponseToJson(fusion::v1::ScoreResponse()).contains("attention"));
}

TEST(ErrorToJson, CodeNameNumberMessage) {
  json j = ErrorToJson("r9", absl::InvalidArgumentError("features: bad"));
  EXPECT_EQ(j["request_id"], "r9");
  EXPECT_EQ(j["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["error"]["code_number"], 3);
  EXPECT_EQ(j["error"]["message"], "features: bad");
}

}  // namespace
}  // namespace fusion::client
