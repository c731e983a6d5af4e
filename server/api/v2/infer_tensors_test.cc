#include "server/api/v2/infer_tensors.h"

#include <gtest/gtest.h>

#include <cstring>

namespace fusion::api::v2 {
namespace {

using Tensor = inference::ModelInferRequest::InferInputTensor;

Tensor Make(const std::string& name, const std::string& datatype,
            std::vector<int64_t> shape) {
  Tensor tensor;
  tensor.set_name(name);
  tensor.set_datatype(datatype);
  tensor.mutable_shape()->Add(shape.begin(), shape.end());
  return tensor;
}

std::string LengthPrefixed(const std::vector<std::string>& elements) {
  std::string raw;
  for (const std::string& element : elements) {
    const uint32_t length = static_cast<uint32_t>(element.size());
    raw.append(reinterpret_cast<const char*>(&length), sizeof(length));
    raw += element;
  }
  return raw;
}

TEST(InputTensorTest, ReadsTypedContentsOfEachDatatype) {
  Tensor ids = Make("INPUT_IDS", "INT32", {2, 2});
  for (int v : {1, 2, 3, -4}) ids.mutable_contents()->add_int_contents(v);
  auto view = InputTensor::Make(ids, nullptr);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->size(), 4);
  EXPECT_EQ(view->Int(3), -4);

  Tensor text = Make("TEXT", "BYTES", {2});
  text.mutable_contents()->add_bytes_contents("a b");
  text.mutable_contents()->add_bytes_contents("");
  auto words = InputTensor::Make(text, nullptr);
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_EQ(words->Bytes(0), "a b");
  EXPECT_EQ(words->Bytes(1), "");
}

TEST(InputTensorTest, ReadsRawLittleEndianContents) {
  const std::vector<int64_t> values = {7, -1, 1LL << 40};
  std::string raw(reinterpret_cast<const char*>(values.data()),
                  values.size() * sizeof(int64_t));
  Tensor ids = Make("INPUT_IDS", "INT64", {1, 3});
  auto view = InputTensor::Make(ids, &raw);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->Int(2), 1LL << 40);

  const float features[] = {0.5f, -2.0f};
  std::string raw_features(reinterpret_cast<const char*>(features),
                           sizeof(features));
  auto floats =
      InputTensor::Make(Make("FEATURES", "FP32", {1, 2}), &raw_features);
  ASSERT_TRUE(floats.ok());
  EXPECT_EQ(floats->Float(1), -2.0f);

  std::string raw_text = LengthPrefixed({"hello", "", "x"});
  auto text = InputTensor::Make(Make("TEXT", "BYTES", {3, 1}), &raw_text);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->Bytes(0), "hello");
  EXPECT_EQ(text->Bytes(2), "x");
}

TEST(InputTensorTest, RejectsWhatDoesNotFitTheShapeNamingTheTensor) {
  struct Case {
    Tensor tensor;
    std::optional<std::string> raw;
    std::string message;
  };
  Tensor short_typed = Make("FEATURES", "FP32", {1, 3});
  short_typed.mutable_contents()->add_fp32_contents(1);
  std::vector<Case> cases = {
      {Make("FEATURES", "FP64", {1, 1}), std::nullopt,
       "FEATURES: unsupported datatype 'FP64'"},
      {Make("FEATURES", std::string(1000, 'D'), {1, 1}), std::nullopt,
       "FEATURES: unsupported datatype '" + std::string(64, 'D') +
           "...(1000 bytes)' (BYTES, INT32, INT64, FP32)"},
      {Make("FEATURES", "FP32", {1, -1}), std::nullopt,
       "FEATURES: shape has a negative dimension"},
      {short_typed, std::nullopt,
       "FEATURES: shape holds 3 elements, contents hold 1"},
      {Make("INPUT_IDS", "INT64", {1, 2}), std::string(12, '\0'),
       "INPUT_IDS: raw contents hold 12 bytes, shape and INT64 need 16"},
      {Make("TEXT", "BYTES", {2}), LengthPrefixed({"only one"}),
       "TEXT: raw contents end inside element 1"},
      {Make("TEXT", "BYTES", {1}), LengthPrefixed({"a", "b"}),
       "TEXT: raw contents hold 5 bytes past the shape's 1 elements"},
      {Make("TEXT", "BYTES", {1}), std::string("\x09\0\0\0abc", 7),
       "TEXT: raw contents end inside element 0"},
  };
  for (const Case& c : cases) {
    auto view = InputTensor::Make(c.tensor, c.raw ? &*c.raw : nullptr);
    ASSERT_FALSE(view.ok()) << c.message;
    EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(view.status().message().substr(0, c.message.size()), c.message)
        << view.status();
  }
}

TEST(OutputTest, TypedAndRawCarryTheSameValues) {
  inference::ModelInferResponse typed, raw;
  const std::vector<float> scores = {0.25f, 0.75f};
  AddFp32Output("SCORE", {2}, scores, false, typed);
  AddFp32Output("SCORE", {2}, scores, true, raw);
  AddInt32Output("TOKEN_COUNT", {2}, {5, 9}, true, raw);
  ASSERT_EQ(typed.outputs(0).contents().fp32_contents_size(), 2);
  EXPECT_EQ(typed.outputs(0).contents().fp32_contents(1), 0.75f);
  EXPECT_EQ(typed.raw_output_contents_size(), 0);
  ASSERT_EQ(raw.raw_output_contents_size(), 2);
  EXPECT_FALSE(raw.outputs(0).has_contents());
  float decoded[2];
  std::memcpy(decoded, raw.raw_output_contents(0).data(), sizeof(decoded));
  EXPECT_EQ(decoded[1], 0.75f);
  int32_t counts[2];
  ASSERT_EQ(raw.raw_output_contents(1).size(), sizeof(counts));
  std::memcpy(counts, raw.raw_output_contents(1).data(), sizeof(counts));
  EXPECT_EQ(counts[1], 9);
  EXPECT_EQ(raw.outputs(1).datatype(), "INT32");
  EXPECT_EQ(raw.outputs(1).shape(0), 2);
}

}  // namespace
}  // namespace fusion::api::v2
