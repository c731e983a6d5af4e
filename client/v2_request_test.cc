#include "client/v2_request.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

using fusion::v1::ScoreRequest;
using inference::ModelInferRequest;

V2ModelInfo Model() {
  fusion::v1::ModelMetadata metadata;
  metadata.set_name("fusion");
  auto add = [&](const char* name, bool allow_missing, float default_value) {
    auto* f = metadata.add_features();
    f->set_name(name);
    f->set_allow_missing(allow_missing);
    f->set_default_value(default_value);
  };
  add("amount", false, 0);
  add("account_age_days", false, 0);
  add("num_prior_txns", true, 7.5f);
  return V2ModelInfoFromMetadata(metadata);
}

ScoreRequest TextRequest() {
  ScoreRequest r;
  r.set_request_id("r1");
  r.set_text("URGENT gift cards");
  // Deliberately not in model order.
  (*r.mutable_features())["num_prior_txns"] = 3;
  (*r.mutable_features())["account_age_days"] = 2;
  (*r.mutable_features())["amount"] = 950.25f;
  return r;
}

const ModelInferRequest::InferInputTensor* Input(const ModelInferRequest& r,
                                                 const std::string& name) {
  for (const auto& t : r.inputs()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

std::vector<int64_t> Shape(const ModelInferRequest::InferInputTensor& t) {
  return {t.shape().begin(), t.shape().end()};
}

TEST(V2ModelInfo, FromMetadataKeepsModelOrder) {
  const V2ModelInfo info = Model();
  EXPECT_EQ(info.name, "fusion");
  ASSERT_EQ(info.features.size(), 3u);
  EXPECT_EQ(info.features[0].name, "amount");
  EXPECT_EQ(info.features[2].name, "num_prior_txns");
  EXPECT_TRUE(info.features[2].allow_missing);
  EXPECT_EQ(info.features[2].default_value, 7.5f);
  const V2ModelInfo named = V2ModelInfoFromNames("m", {"b", "a"});
  ASSERT_EQ(named.features.size(), 2u);
  EXPECT_EQ(named.features[0].name, "b");
  EXPECT_FALSE(named.features[0].allow_missing);
}

TEST(ToV2Request, TextAndFeaturesInModelOrder) {
  auto r = ToV2Request(TextRequest(), Model());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name(), "fusion");
  EXPECT_EQ(r->model_version(), "");
  EXPECT_EQ(r->id(), "r1");
  ASSERT_EQ(r->inputs_size(), 2);
  EXPECT_EQ(r->raw_input_contents_size(), 0);
  const auto& text = r->inputs(0);
  EXPECT_EQ(text.name(), "TEXT");
  EXPECT_EQ(text.datatype(), "BYTES");
  EXPECT_EQ(Shape(text), (std::vector<int64_t>{1}));
  ASSERT_EQ(text.contents().bytes_contents_size(), 1);
  EXPECT_EQ(text.contents().bytes_contents(0), "URGENT gift cards");
  const auto& features = r->inputs(1);
  EXPECT_EQ(features.name(), "FEATURES");
  EXPECT_EQ(features.datatype(), "FP32");
  EXPECT_EQ(Shape(features), (std::vector<int64_t>{1, 3}));
  ASSERT_EQ(features.contents().fp32_contents_size(), 3);
  EXPECT_EQ(features.contents().fp32_contents(0), 950.25f);
  EXPECT_EQ(features.contents().fp32_contents(1), 2.0f);
  EXPECT_EQ(features.contents().fp32_contents(2), 3.0f);
  // Default outputs, no parameters.
  EXPECT_EQ(r->outputs_size(), 0);
  EXPECT_TRUE(r->parameters().empty());
}

TEST(ToV2Request, RequestModelWinsOverMetadataName) {
  ScoreRequest request = TextRequest();
  request.set_model("other");
  request.set_model_version("3");
  auto r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name(), "other");
  EXPECT_EQ(r->model_version(), "3");
  EXPECT_EQ(V2InferPath(*r), "/v2/models/other/versions/3/infer");
  request.clear_model_version();
  EXPECT_EQ(V2InferPath(*ToV2Request(request, Model())),
            "/v2/models/other/infer");
}

TEST(ToV2Request, TokenIdsBecomeInt64InputIds) {
  ScoreRequest request;
  request.add_token_ids(2);
  request.add_token_ids(1234);
  request.add_token_ids(3);
  request.add_feature_vector(1);
  request.add_feature_vector(2);
  request.add_feature_vector(3);
  auto r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  const auto* ids = Input(*r, "INPUT_IDS");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(Input(*r, "TEXT"), nullptr);
  EXPECT_EQ(Input(*r, "ATTENTION_MASK"), nullptr);
  EXPECT_EQ(ids->datatype(), "INT64");
  EXPECT_EQ(Shape(*ids), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(std::vector<int64_t>(ids->contents().int64_contents().begin(),
                                 ids->contents().int64_contents().end()),
            (std::vector<int64_t>{2, 1234, 3}));
  const auto* features = Input(*r, "FEATURES");
  ASSERT_NE(features, nullptr);
  EXPECT_EQ(Shape(*features), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(features->contents().fp32_contents(2), 3.0f);
}

TEST(ToV2Request, EmptyTextIsStillText) {
  ScoreRequest request = TextRequest();
  request.set_text("");
  request.add_token_ids(2);  // text wins, as in the native API
  auto r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_NE(Input(*r, "TEXT"), nullptr);
  EXPECT_EQ(Input(*r, "INPUT_IDS"), nullptr);
  EXPECT_EQ(Input(*r, "TEXT")->contents().bytes_contents(0), "");
}

TEST(ToV2Request, MissingFeatures) {
  ScoreRequest request = TextRequest();
  request.mutable_features()->erase("num_prior_txns");  // allows missing
  auto r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Input(*r, "FEATURES")->contents().fp32_contents(2), 7.5f);

  request.mutable_features()->erase("amount");  // required
  r = ToV2Request(request, Model());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'amount' is missing"), std::string::npos)
      << r.status();
}

TEST(ToV2Request, Refusals) {
  ScoreRequest unknown = TextRequest();
  (*unknown.mutable_features())["nope"] = 1;
  auto r = ToV2Request(unknown, Model());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown feature 'nope'"),
            std::string::npos);

  ScoreRequest no_input;
  no_input.add_feature_vector(1);
  EXPECT_EQ(ToV2Request(no_input, Model()).status().code(),
            absl::StatusCode::kInvalidArgument);

  ScoreRequest short_vector;
  short_vector.add_token_ids(2);
  short_vector.add_feature_vector(1);
  r = ToV2Request(short_vector, Model());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the model has 3 features"),
            std::string::npos);

  // Without a feature order, names cannot be placed.
  EXPECT_FALSE(ToV2Request(TextRequest(), V2ModelInfo{}).ok());
  // ... but a vector goes as it is.
  auto any = ToV2Request(short_vector, V2ModelInfo{});
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(Shape(*Input(*any, "FEATURES")), (std::vector<int64_t>{1, 1}));
}

TEST(ToV2Request, AttentionRequestsTheAttentionOutputs) {
  ScoreRequest request = TextRequest();
  request.set_attention(fusion::v1::ATTENTION_MEAN);
  auto r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> names;
  for (const auto& o : r->outputs()) {
    names.push_back(o.name());
    EXPECT_TRUE(o.parameters().empty()) << o.name();
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "PROBABILITIES", "SCORE", "TEXT_TO_FEATURES_ATTENTION",
                       "FEATURES_TO_TEXT_ATTENTION", "TOKEN_COUNT"}));

  request.set_attention(fusion::v1::ATTENTION_PER_HEAD);
  r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& o : r->outputs()) {
    const bool attention = o.name() == "TEXT_TO_FEATURES_ATTENTION" ||
                           o.name() == "FEATURES_TO_TEXT_ATTENTION";
    if (attention) {
      ASSERT_TRUE(o.parameters().contains("attention")) << o.name();
      EXPECT_EQ(o.parameters().at("attention").string_param(), "per_head");
    } else {
      EXPECT_TRUE(o.parameters().empty()) << o.name();
    }
  }
}

TEST(ToV2Request, PriorityParameter) {
  ScoreRequest request = TextRequest();
  auto r = ToV2Request(request, Model());
  EXPECT_FALSE(r->parameters().contains("priority"));  // level 0 = default
  request.set_priority(2);
  r = ToV2Request(request, Model());
  ASSERT_TRUE(r->parameters().contains("priority"));
  // Native level 2 is Triton priority 3 (1..N are levels 0..N-1).
  EXPECT_EQ(r->parameters().at("priority").int64_param(), 3);
}

TEST(RawEncoding, ByteLayoutIsLittleEndian) {
  EXPECT_EQ(EncodeRawBytes({"ab", ""}), std::string("\x02\x00\x00\x00"
                                                    "ab"
                                                    "\x00\x00\x00\x00",
                                                    10));
  EXPECT_EQ(EncodeRawInt64({1, -2, 0x0102030405060708}),
            std::string("\x01\x00\x00\x00\x00\x00\x00\x00"
                        "\xfe\xff\xff\xff\xff\xff\xff\xff"
                        "\x08\x07\x06\x05\x04\x03\x02\x01",
                        24));
  // 1.0f = 0x3f800000, -2.5f = 0xc0200000.
  EXPECT_EQ(EncodeRawFp32({1.0f, -2.5f}), std::string("\x00\x00\x80\x3f"
                                                      "\x00\x00\x20\xc0",
                                                      8));
}

TEST(ToV2Request, RawContentsReplaceTypedContents) {
  ScoreRequest request = TextRequest();
  auto r = ToV2Request(request, Model(), V2Options{/*raw=*/true});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->inputs_size(), 2);
  ASSERT_EQ(r->raw_input_contents_size(), 2);
  for (const auto& t : r->inputs()) EXPECT_FALSE(t.has_contents()) << t.name();
  const std::string text = "URGENT gift cards";
  EXPECT_EQ(r->raw_input_contents(0),
            std::string("\x11\x00\x00\x00", 4) + text);  // 17 bytes
  EXPECT_EQ(r->raw_input_contents(1), EncodeRawFp32({950.25f, 2, 3}));

  ScoreRequest ids;
  ids.add_token_ids(2);
  ids.add_token_ids(300);
  ids.add_feature_vector(0.5f);
  ids.add_feature_vector(1);
  ids.add_feature_vector(2);
  r = ToV2Request(ids, Model(), V2Options{/*raw=*/true});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->raw_input_contents(0), EncodeRawInt64({2, 300}));
  EXPECT_EQ(r->raw_input_contents(0).size(), 16u);
  EXPECT_EQ(r->raw_input_contents(1).size(), 12u);
  EXPECT_EQ(Shape(r->inputs(0)), (std::vector<int64_t>{1, 2}));
}

TEST(V2RequestToJson, RestForm) {
  ScoreRequest request = TextRequest();
  request.set_priority(1);
  request.set_attention(fusion::v1::ATTENTION_PER_HEAD);
  auto r = ToV2Request(request, Model());
  ASSERT_TRUE(r.ok()) << r.status();
  auto json = V2RequestToJson(*r);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ((*json)["id"], "r1");
  EXPECT_EQ((*json)["parameters"], nlohmann::ordered_json({{"priority", 2}}));
  // Keys in REST order: id, parameters, inputs, outputs; name, datatype,
  // shape, data.
  EXPECT_EQ(json->dump().substr(0, 40),
            R"({"id":"r1","parameters":{"priority":2},")");
  const nlohmann::ordered_json expected_inputs =
      nlohmann::ordered_json::parse(R"([
    {"name": "TEXT", "datatype": "BYTES", "shape": [1],
     "data": ["URGENT gift cards"]},
    {"name": "FEATURES", "datatype": "FP32", "shape": [1, 3],
     "data": [950.25, 2.0, 3.0]}])");
  EXPECT_EQ((*json)["inputs"], expected_inputs);
  ASSERT_EQ((*json)["outputs"].size(), 5u);
  EXPECT_EQ((*json)["outputs"][0],
            nlohmann::ordered_json({{"name", "PROBABILITIES"}}));
  EXPECT_EQ((*json)["outputs"][2]["parameters"]["attention"], "per_head");

  // Raw contents are decoded back into the same data.
  auto raw = ToV2Request(request, Model(), V2Options{/*raw=*/true});
  ASSERT_TRUE(raw.ok());
  auto raw_json = V2RequestToJson(*raw);
  ASSERT_TRUE(raw_json.ok()) << raw_json.status();
  EXPECT_EQ(*raw_json, *json);
}

TEST(V2RequestToJson, FloatsAreShortestAndIdsExact) {
  ScoreRequest request;
  request.add_token_ids(2);
  request.add_token_ids(99999);
  request.add_feature_vector(0.1f);
  for (bool raw : {false, true}) {
    auto r = ToV2Request(request, V2ModelInfo{}, V2Options{raw});
    ASSERT_TRUE(r.ok());
    auto json = V2RequestToJson(*r);
    ASSERT_TRUE(json.ok()) << json.status();
    EXPECT_EQ((*json)["inputs"][0]["data"], nlohmann::ordered_json({2, 99999}));
    EXPECT_EQ((*json)["inputs"][1]["data"].dump(), "[0.1]");
    EXPECT_FALSE(json->contains("outputs"));
    EXPECT_FALSE(json->contains("parameters"));
    EXPECT_FALSE(json->contains("id"));
  }
}

TEST(V2RequestToJson, BadRawContents) {
  auto r = ToV2Request(TextRequest(), Model(), V2Options{/*raw=*/true});
  ASSERT_TRUE(r.ok());
  ModelInferRequest truncated = *r;
  truncated.set_raw_input_contents(0, std::string("\x20\x00\x00\x00x", 5));
  EXPECT_FALSE(V2RequestToJson(truncated).ok());
  ModelInferRequest wrong_count = *r;
  wrong_count.set_raw_input_contents(1, EncodeRawFp32({1, 2}));
  EXPECT_FALSE(V2RequestToJson(wrong_count).ok());
  ModelInferRequest missing = *r;
  missing.mutable_raw_input_contents()->RemoveLast();
  EXPECT_FALSE(V2RequestToJson(missing).ok());
}

TEST(V2RequestToText, HasTheTensors) {
  auto r = ToV2Request(TextRequest(), Model());
  ASSERT_TRUE(r.ok());
  const std::string text = V2RequestToText(*r);
  EXPECT_NE(text.find("model_name: \"fusion\""), std::string::npos) << text;
  EXPECT_NE(text.find("name: \"FEATURES\""), std::string::npos) << text;
  EXPECT_NE(text.find("fp32_contents: 950.25"), std::string::npos) << text;
}

TEST(V2StreamErrorCode, ReadsTheCodeName) {
  EXPECT_EQ(V2StreamErrorCode("NOT_FOUND: no model 'x'"),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(V2StreamErrorCode("[StatusCode.INVALID_ARGUMENT] bad"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(V2StreamErrorCode("RESOURCE_EXHAUSTED"),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(V2StreamErrorCode("Request for unknown model"),
            absl::StatusCode::kUnknown);
  EXPECT_EQ(V2StreamErrorCode("OK"), absl::StatusCode::kUnknown);
  EXPECT_EQ(V2StreamErrorCode(""), absl::StatusCode::kUnknown);
  EXPECT_EQ(V2StreamErrorCode("NOT_FOUNDX: y"), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace fusion::client
