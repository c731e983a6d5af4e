#include "server/api/v2/http_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/text_format.h"

namespace fusion::api::v2 {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using Json = nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- Helpers
// -------------------------------------------------------------------

template <typename T>
std::string LE(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) {
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));  // this test runs on little-endian
    out.append(reinterpret_cast<const char*>(bytes), sizeof(T));
  }
  return out;
}

std::string BytesLE(std::initializer_list<std::string> elements) {
  std::string out;
  for (const std::string& e : elements) {
    out += LE<uint32_t>({static_cast<uint32_t>(e.size())});
    out += e;
  }
  return out;
}

ParsedInferRequest ParseOk(const std::string& body,
                           std::optional<std::string> header = std::nullopt) {
  absl::StatusOr<ParsedInferRequest> parsed = ParseInferRequest(
      body,
      header.has_value() ? std::optional<absl::string_view>(*header)
                         : std::nullopt,
      "m", "3");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : ParsedInferRequest{};
}

// The INVALID_ARGUMENT message of a refused body ("" if it was accepted).
std::string ParseError(const std::string& body,
                       std::optional<std::string> header = std::nullopt) {
  absl::StatusOr<ParsedInferRequest> parsed = ParseInferRequest(
      body,
      header.has_value() ? std::optional<absl::string_view>(*header)
                         : std::nullopt,
      "m", "");
  if (parsed.ok()) {
    ADD_FAILURE() << "accepted: " << body;
    return "";
  }
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
      << parsed.status();
  return std::string(parsed.status().message());
}

// A body whose one input (datatype, shape) carries `data` (JSON text).
std::string OneInput(const std::string& datatype, const std::string& shape,
                     const std::string& data) {
  return R"({"inputs":[{"name":"X","datatype":")" + datatype + R"(","shape":)" +
         shape + R"(,"data":)" + data + "}]}";
}

std::string DataError(const std::string& datatype, const std::string& shape,
                      const std::string& data) {
  return ParseError(OneInput(datatype, shape, data));
}

template <typename T>
T FromText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message))
      << text;
  return message;
}

// ---- Requests: typed JSON data ---------------------------------------------

TEST(ParseInferRequestTest, TypedInputsOutputsAndParameters) {
  const ParsedInferRequest parsed = ParseOk(R"({
    "id": "req-1",
    "model_name": "ignored",
    "parameters": {"priority": 2, "timeout": 1500, "tag": "x"},
    "inputs": [
      {"name": "TEXT", "datatype": "BYTES", "shape": [2],
       "data": ["hello", "wörld"]},
      {"name": "FEATURES", "datatype": "FP32", "shape": [2, 2],
       "parameters": {"note": true},
       "data": [1, 2.5, -3, 0.1]}
    ],
    "outputs": [{"name": "SCORE"},
                {"name": "PROBABILITIES", "parameters": {"binary_data": true}}]
  })");
  const ModelInferRequest& r = parsed.request;
  EXPECT_EQ(r.model_name(), "m");
  EXPECT_EQ(r.model_version(), "3");
  EXPECT_EQ(r.id(), "req-1");
  EXPECT_EQ(r.raw_input_contents_size(), 0);
  ASSERT_EQ(r.inputs_size(), 2);
  EXPECT_EQ(r.inputs(0).name(), "TEXT");
  EXPECT_EQ(r.inputs(0).datatype(), "BYTES");
  EXPECT_THAT(r.inputs(0).shape(), ElementsAre(2));
  EXPECT_THAT(r.inputs(0).contents().bytes_contents(),
              ElementsAre("hello", "wörld"));
  EXPECT_EQ(r.inputs(1).name(), "FEATURES");
  EXPECT_THAT(r.inputs(1).shape(), ElementsAre(2, 2));
  EXPECT_THAT(r.inputs(1).contents().fp32_contents(),
              ElementsAre(1.0f, 2.5f, -3.0f, 0.1f));
  EXPECT_TRUE(r.inputs(1).parameters().at("note").bool_param());
  EXPECT_EQ(r.parameters().at("priority").int64_param(), 2);
  EXPECT_EQ(r.parameters().at("timeout").int64_param(), 1500);
  EXPECT_EQ(r.parameters().at("tag").string_param(), "x");
  ASSERT_EQ(r.outputs_size(), 2);
  EXPECT_EQ(r.outputs(0).name(), "SCORE");
  EXPECT_EQ(r.outputs(1).name(), "PROBABILITIES");
  // binary_data stays in the proto, and drives the encoding.
  EXPECT_TRUE(r.outputs(1).parameters().at("binary_data").bool_param());
  EXPECT_FALSE(parsed.encoding.binary_default);
  EXPECT_TRUE(parsed.encoding.Binary("PROBABILITIES"));
  EXPECT_FALSE(parsed.encoding.Binary("SCORE"));
}

TEST(ParseInferRequestTest, NestedDataIsRowMajor) {
  const ParsedInferRequest parsed =
      ParseOk(OneInput("INT64", "[2,3]", "[[1,2,3],[4,5,6]]"));
  EXPECT_THAT(parsed.request.inputs(0).contents().int64_contents(),
              ElementsAre(1, 2, 3, 4, 5, 6));
  const ParsedInferRequest deeper =
      ParseOk(OneInput("INT32", "[2,1,2]", "[[[1,2]],[[3,4]]]"));
  EXPECT_THAT(deeper.request.inputs(0).contents().int_contents(),
              ElementsAre(1, 2, 3, 4));
}

TEST(ParseInferRequestTest, EveryDatatypeGoesToItsTypedField) {
  const auto contents = [](const std::string& dtype, const std::string& data) {
    return ParseOk(OneInput(dtype, "[2]", data)).request.inputs(0).contents();
  };
  EXPECT_THAT(contents("BOOL", "[true,false]").bool_contents(),
              ElementsAre(true, false));
  EXPECT_THAT(contents("INT8", "[-128,127]").int_contents(),
              ElementsAre(-128, 127));
  EXPECT_THAT(contents("INT16", "[-32768,32767]").int_contents(),
              ElementsAre(-32768, 32767));
  EXPECT_THAT(contents("INT32", "[-2147483648,2147483647]").int_contents(),
              ElementsAre(INT32_MIN, INT32_MAX));
  EXPECT_THAT(contents("INT64", "[-9223372036854775808,9223372036854775807]")
                  .int64_contents(),
              ElementsAre(INT64_MIN, INT64_MAX));
  EXPECT_THAT(contents("UINT8", "[0,255]").uint_contents(),
              ElementsAre(0u, 255u));
  EXPECT_THAT(contents("UINT16", "[0,65535]").uint_contents(),
              ElementsAre(0u, 65535u));
  EXPECT_THAT(contents("UINT32", "[0,4294967295]").uint_contents(),
              ElementsAre(0u, UINT32_MAX));
  EXPECT_THAT(contents("UINT64", "[0,18446744073709551615]").uint64_contents(),
              ElementsAre(0u, UINT64_MAX));
  EXPECT_THAT(contents("FP64", "[1e300,-0.5]").fp64_contents(),
              ElementsAre(1e300, -0.5));
  // The float nearest to numpy's printing of FLT_MAX is FLT_MAX.
  EXPECT_THAT(contents("FP32", "[3.4028235e38,-1]").fp32_contents(),
              ElementsAre(std::numeric_limits<float>::max(), -1.0f));
  EXPECT_THAT(contents("BYTES", R"(["", "a\u0000b"])").bytes_contents(),
              ElementsAre("", std::string("a\0b", 3)));
}

TEST(ParseInferRequestTest, EmptyTensor) {
  const ParsedInferRequest parsed = ParseOk(OneInput("FP32", "[0,4]", "[]"));
  EXPECT_EQ(parsed.request.inputs(0).contents().fp32_contents_size(), 0);
  EXPECT_THAT(parsed.request.inputs(0).shape(), ElementsAre(0, 4));
}

TEST(ParseInferRequestTest, ParameterTypes) {
  const ParsedInferRequest parsed = ParseOk(R"({"inputs": [],
    "parameters": {"b": false, "i": -7, "big": 18446744073709551615,
                   "max": 9223372036854775807, "d": 0.25, "e": 1e3,
                   "s": "str", "binary_data_output": true}})");
  const auto& p = parsed.request.parameters();
  EXPECT_EQ(p.at("b").parameter_choice_case(), InferParameter::kBoolParam);
  EXPECT_FALSE(p.at("b").bool_param());
  EXPECT_EQ(p.at("i").int64_param(), -7);
  EXPECT_EQ(p.at("big").parameter_choice_case(), InferParameter::kUint64Param);
  EXPECT_EQ(p.at("big").uint64_param(), UINT64_MAX);
  EXPECT_EQ(p.at("max").parameter_choice_case(), InferParameter::kInt64Param);
  EXPECT_EQ(p.at("max").int64_param(), INT64_MAX);
  EXPECT_EQ(p.at("d").double_param(), 0.25);
  EXPECT_EQ(p.at("e").parameter_choice_case(), InferParameter::kDoubleParam);
  EXPECT_EQ(p.at("s").string_param(), "str");
  EXPECT_TRUE(p.at("binary_data_output").bool_param());
  EXPECT_TRUE(parsed.encoding.binary_default);
  EXPECT_TRUE(parsed.encoding.Binary("ANY"));
}

TEST(ParseInferRequestTest, OutputBinaryOverridesTheDefault) {
  const ParsedInferRequest parsed = ParseOk(R"({"inputs": [],
    "parameters": {"binary_data_output": true},
    "outputs": [{"name": "A", "parameters": {"binary_data": false}},
                {"name": "B"}]})");
  EXPECT_FALSE(parsed.encoding.Binary("A"));
  EXPECT_TRUE(parsed.encoding.Binary("B"));
  EXPECT_TRUE(parsed.encoding.Binary("C"));
}

// ---- Requests: binary tensor data -------------------------------------------

TEST(ParseInferRequestTest, BinaryInputsMakeEveryInputRaw) {
  const std::string json = R"({"inputs": [
    {"name": "IDS", "datatype": "INT32", "shape": [1, 3],
     "parameters": {"binary_data_size": 12}},
    {"name": "FEATURES", "datatype": "FP32", "shape": [2], "data": [1.5, -2]},
    {"name": "TEXT", "datatype": "BYTES", "shape": [2],
     "parameters": {"binary_data_size": 13}},
    {"name": "MORE", "datatype": "BYTES", "shape": [1], "data": ["xyz"]}]})";
  const std::string ids = LE<int32_t>({7, -1, 300});
  const std::string text = BytesLE({"ab", "cde"});
  const ParsedInferRequest parsed =
      ParseOk(json + ids + text, std::to_string(json.size()));
  const ModelInferRequest& r = parsed.request;
  ASSERT_EQ(r.raw_input_contents_size(), 4);
  EXPECT_EQ(r.raw_input_contents(0), ids);
  EXPECT_EQ(r.raw_input_contents(1), LE<float>({1.5f, -2.0f}));
  EXPECT_EQ(r.raw_input_contents(2), text);
  EXPECT_EQ(r.raw_input_contents(3), BytesLE({"xyz"}));
  for (const auto& input : r.inputs()) {
    EXPECT_FALSE(input.has_contents()) << input.name();
  }
  EXPECT_EQ(r.inputs(0).parameters().at("binary_data_size").int64_param(), 12);
  EXPECT_THAT(r.inputs(0).shape(), ElementsAre(1, 3));
}

TEST(ParseInferRequestTest, JsonInputsBecomeLittleEndianRaw) {
  const std::string json = R"({"inputs": [
    {"name": "A", "datatype": "BOOL", "shape": [1],
     "parameters": {"binary_data_size": 1}},
    {"name": "B", "datatype": "INT8", "shape": [2], "data": [-1, 2]},
    {"name": "C", "datatype": "UINT16", "shape": [1], "data": [513]},
    {"name": "D", "datatype": "INT64", "shape": [1], "data": [-2]},
    {"name": "E", "datatype": "FP64", "shape": [1], "data": [0.5]},
    {"name": "F", "datatype": "BOOL", "shape": [2], "data": [true, false]}]})";
  const ParsedInferRequest parsed =
      ParseOk(json + std::string(1, '\1'), std::to_string(json.size()));
  const ModelInferRequest& r = parsed.request;
  ASSERT_EQ(r.raw_input_contents_size(), 6);
  EXPECT_EQ(r.raw_input_contents(0), std::string(1, '\1'));
  EXPECT_EQ(r.raw_input_contents(1), std::string("\xff\x02", 2));
  EXPECT_EQ(r.raw_input_contents(2), std::string("\x01\x02", 2));
  EXPECT_EQ(r.raw_input_contents(3), LE<int64_t>({-2}));
  EXPECT_EQ(r.raw_input_contents(4), LE<double>({0.5}));
  EXPECT_EQ(r.raw_input_contents(5), std::string("\x01\x00", 2));
}

TEST(ParseInferRequestTest, HeaderWithoutBinaryInputsKeepsTypedContents) {
  const std::string json = OneInput("INT32", "[1]", "[5]");
  const ParsedInferRequest parsed = ParseOk(json, std::to_string(json.size()));
  EXPECT_EQ(parsed.request.raw_input_contents_size(), 0);
  EXPECT_THAT(parsed.request.inputs(0).contents().int_contents(),
              ElementsAre(5));
}

TEST(ParseInferRequestTest, FP16AndBF16AsBinary) {
  const std::string json = R"({"inputs": [
    {"name": "H", "datatype": "FP16", "shape": [2],
     "parameters": {"binary_data_size": 4}},
    {"name": "B", "datatype": "BF16", "shape": [1],
     "parameters": {"binary_data_size": 2}}]})";
  const std::string tail = LE<uint16_t>({0x3c00, 0xc000, 0x3f80});
  const ParsedInferRequest parsed =
      ParseOk(json + tail, std::to_string(json.size()));
  EXPECT_EQ(parsed.request.raw_input_contents(0), tail.substr(0, 4));
  EXPECT_EQ(parsed.request.raw_input_contents(1), tail.substr(4));
}

TEST(ParseInferRequestTest, BinaryErrors) {
  const std::string json = R"({"inputs": [
    {"name": "A", "datatype": "INT32", "shape": [2],
     "parameters": {"binary_data_size": 8}}]})";
  const std::string n = std::to_string(json.size());
  // Too few bytes after the JSON.
  EXPECT_THAT(
      ParseError(json + LE<int32_t>({1}), n),
      StartsWith("inputs[0].parameters.binary_data_size (A): 8 bytes, but "
                 "only 4 bytes"));
  // Bytes left over.
  EXPECT_THAT(ParseError(json + LE<int32_t>({1, 2, 3}), n),
              StartsWith("Inference-Header-Content-Length: the body has 4 "
                         "bytes after"));
  // No header: the whole body is JSON, so no binary data.
  EXPECT_THAT(ParseError(json),
              AllOf(StartsWith("inputs[0].parameters.binary_data_size (A): 8 "
                               "bytes, but only 0"),
                    HasSubstr("no Inference-Header-Content-Length header")));
  // Header larger than the body.
  const std::string body = json + LE<int32_t>({1, 2});
  EXPECT_EQ(
      ParseError(body, std::to_string(body.size() + 1)),
      "Inference-Header-Content-Length: " + std::to_string(body.size() + 1) +
          " exceeds the body's " + std::to_string(body.size()) + " bytes");
  // Header not a number.
  EXPECT_THAT(ParseError(body, "12x"),
              StartsWith("Inference-Header-Content-Length: expected a "
                         "non-negative integer, got '12x'"));
  EXPECT_THAT(ParseError(body, "-5"),
              StartsWith("Inference-Header-Content-Length: expected a "
                         "non-negative integer"));
  EXPECT_THAT(ParseError(body, ""),
              StartsWith("Inference-Header-Content-Length: expected"));
  // Raw binary requests (no JSON) are not supported.
  EXPECT_THAT(ParseError(body, "0"),
              StartsWith("Inference-Header-Content-Length: 0"));
  // Header cutting the JSON short.
  EXPECT_THAT(ParseError(body, "10"), StartsWith("malformed JSON"));
}

TEST(ParseInferRequestTest, BinarySizeMustMatchTheShape) {
  const std::string json = R"({"inputs": [
    {"name": "A", "datatype": "FP32", "shape": [2],
     "parameters": {"binary_data_size": 4}}]})";
  EXPECT_THAT(ParseError(json + LE<float>({1}), std::to_string(json.size())),
              StartsWith("inputs[0] (A): binary data of 4 bytes does not match "
                         "shape [2] of FP32"));
}

TEST(ParseInferRequestTest, BinaryBytesMustBeWellFormed) {
  const auto body = [](const std::string& shape, const std::string& tail) {
    const std::string json =
        R"({"inputs": [{"name": "T", "datatype": "BYTES", "shape": )" + shape +
        R"(, "parameters": {"binary_data_size": )" +
        std::to_string(tail.size()) + "}}]}";
    return std::make_pair(json + tail, std::to_string(json.size()));
  };
  auto [count_body, count_n] = body("[3]", BytesLE({"a", "b"}));
  EXPECT_THAT(ParseError(count_body, count_n),
              StartsWith("inputs[0] (T): binary data holds 2 BYTES elements, "
                         "shape [3] has 3"));
  auto [long_body, long_n] = body("[1]", LE<uint32_t>({5}) + "abc");
  EXPECT_THAT(
      ParseError(long_body, long_n),
      StartsWith("inputs[0] (T): BYTES element 0 of 5 bytes runs past"));
  auto [short_body, short_n] = body("[2]", BytesLE({"a"}) + "\x01\x00");
  EXPECT_THAT(ParseError(short_body, short_n),
              StartsWith("inputs[0] (T): BYTES element 1 has a truncated"));
}

TEST(ParseInferRequestTest, BinaryParameterErrors) {
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "A", "datatype": "INT32",
      "shape": [1], "data": [1], "parameters": {"binary_data_size": 4}}]})"),
            "inputs[0].data (A): not allowed with parameters.binary_data_size");
  EXPECT_EQ(
      ParseError(R"({"inputs": [{"name": "A", "datatype": "INT32",
      "shape": [1], "parameters": {"binary_data_size": -4}}]})"),
      "inputs[0].parameters.binary_data_size (A): expected a non-negative "
      "integer");
  EXPECT_EQ(
      ParseError(R"({"inputs": [{"name": "A", "datatype": "INT32",
      "shape": [1], "parameters": {"binary_data_size": "4"}}]})"),
      "inputs[0].parameters.binary_data_size (A): expected a non-negative "
      "integer");
  EXPECT_EQ(ParseError(R"({"inputs": [],
      "parameters": {"binary_data_output": 1}})"),
            "parameters.binary_data_output: expected a boolean");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "A"},
      {"name": "B", "parameters": {"binary_data": "yes"}}]})"),
            "outputs[1].parameters.binary_data (B): expected a boolean");
}

// ---- Requests: errors naming the field --------------------------------------

TEST(ParseInferRequestTest, DataElementErrorsNameTheElement) {
  EXPECT_EQ(ParseError(R"({"inputs": [
      {"name": "A", "datatype": "INT64", "shape": [1], "data": [1]},
      {"name": "B", "datatype": "FP32", "shape": [4],
       "data": [1, 2, 3, "4"]}]})"),
            "inputs[1].data[3] (B): expected a number, got a string");
  EXPECT_EQ(DataError("INT64", "[2,2]", "[[1,2],[3,true]]"),
            "inputs[0].data[1][1] (X): expected an integer, got a boolean");
  EXPECT_EQ(DataError("INT32", "[2]", "[1, 2.5]"),
            "inputs[0].data[1] (X): expected an integer, got a number");
  EXPECT_EQ(DataError("BOOL", "[1]", "[1]"),
            "inputs[0].data[0] (X): expected a boolean, got a number");
  EXPECT_EQ(DataError("BYTES", "[2]", R"(["a", 3])"),
            "inputs[0].data[1] (X): expected a string, got a number");
  EXPECT_EQ(DataError("FP64", "[1]", "[null]"),
            "inputs[0].data[0] (X): expected a number, got null");
  EXPECT_EQ(DataError("FP32", "[1]", R"([{"a":1}])"),
            "inputs[0].data[0] (X): expected a number, got an object");
  // A scalar instead of an array is one element.
  EXPECT_EQ(DataError("INT32", "[1]", R"("7")"),
            "inputs[0].data (X): expected an integer, got a string");
}

TEST(ParseInferRequestTest, DataElementsOutOfRange) {
  EXPECT_EQ(DataError("INT8", "[2]", "[1, 128]"),
            "inputs[0].data[1] (X): 128 is out of range for INT8");
  EXPECT_EQ(DataError("INT8", "[1]", "[-129]"),
            "inputs[0].data[0] (X): -129 is out of range for INT8");
  EXPECT_EQ(DataError("INT16", "[1]", "[40000]"),
            "inputs[0].data[0] (X): 40000 is out of range for INT16");
  EXPECT_EQ(DataError("INT32", "[1]", "[2147483648]"),
            "inputs[0].data[0] (X): 2147483648 is out of range for INT32");
  EXPECT_EQ(DataError("INT64", "[1]", "[9223372036854775808]"),
            "inputs[0].data[0] (X): 9223372036854775808 is out of range for "
            "INT64");
  EXPECT_EQ(DataError("UINT8", "[1]", "[256]"),
            "inputs[0].data[0] (X): 256 is out of range for UINT8");
  EXPECT_EQ(DataError("UINT8", "[1]", "[-1]"),
            "inputs[0].data[0] (X): -1 is out of range for UINT8");
  EXPECT_EQ(DataError("UINT32", "[1]", "[4294967296]"),
            "inputs[0].data[0] (X): 4294967296 is out of range for UINT32");
  EXPECT_EQ(DataError("UINT64", "[1]", "[1.5]"),
            "inputs[0].data[0] (X): expected a non-negative integer, got a "
            "number");
  EXPECT_EQ(DataError("FP32", "[2,1]", "[[0], [1e39]]"),
            "inputs[0].data[1][0] (X): 1e+39 is out of range for FP32");
  EXPECT_EQ(DataError("FP32", "[1]", "[-3.5e38]"),
            "inputs[0].data[0] (X): -3.5e+38 is out of range for FP32");
}

TEST(ParseInferRequestTest, ElementCountMustMatchTheShape) {
  EXPECT_EQ(DataError("FP32", "[2,2]", "[1,2,3]"),
            "inputs[0].data (X): 3 elements, but shape [2,2] has 4");
  EXPECT_EQ(DataError("FP32", "[2,2]", "[[1,2],[3,4],[5,6]]"),
            "inputs[0].data (X): 3 elements, but dimension 0 of shape [2,2] "
            "is 2");
  EXPECT_EQ(DataError("BYTES", "[0]", R"(["a"])"),
            "inputs[0].data (X): 1 elements, but shape [0] has 0");
}

TEST(ParseInferRequestTest, FP16CannotBeJson) {
  EXPECT_EQ(DataError("FP16", "[1]", "[1.0]"),
            "inputs[0].data[0] (X): FP16 data cannot be given as JSON; send it "
            "as binary data");
  EXPECT_THAT(DataError("BF16", "[1]", "[1.0]"),
              StartsWith("inputs[0].data[0] (X): BF16 data cannot be given"));
}

TEST(ParseInferRequestTest, ShapeErrors) {
  EXPECT_EQ(DataError("FP32", "2", "[1,2]"),
            "inputs[0].shape (X): expected an array of integers, got a number");
  EXPECT_EQ(DataError("FP32", "[2,-1]", "[1,2]"),
            "inputs[0].shape[1] (X): expected a non-negative integer, got -1");
  EXPECT_EQ(DataError("FP32", R"([2,"1"])", "[1,2]"),
            "inputs[0].shape[1] (X): expected a non-negative integer, got a "
            "string");
  EXPECT_EQ(DataError("FP32", "[1.5]", "[1]"),
            "inputs[0].shape[0] (X): expected a non-negative integer, got 1.5");
  EXPECT_EQ(
      DataError("FP32", "[4611686018427387904,4]", "[1]"),
      "inputs[0].shape (X): [4611686018427387904,4] has too many elements");
}

TEST(ParseInferRequestTest, InputFieldErrors) {
  EXPECT_EQ(DataError("FLOAT", "[1]", "[1]"),
            "inputs[0].datatype (X): unknown datatype 'FLOAT'");
  EXPECT_EQ(ParseError(R"({"inputs": [{"datatype": "FP32", "shape": [1],
      "data": [1]}]})"),
            "inputs[0].name: missing");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": 5, "datatype": "FP32",
      "shape": [1], "data": [1]}]})"),
            "inputs[0].name: expected a string, got a number");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "A", "shape": [1],
      "data": [1]}]})"),
            "inputs[0].datatype (A): missing");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "A", "datatype": 1,
      "shape": [1], "data": [1]}]})"),
            "inputs[0].datatype (A): expected a string, got a number");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "A", "datatype": "FP32",
      "data": [1]}]})"),
            "inputs[0].shape (A): missing");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "A", "datatype": "FP32",
      "shape": [1]}]})"),
            "inputs[0].data (A): missing");
  EXPECT_EQ(ParseError(R"({"inputs": [7]})"),
            "inputs[0]: expected an object, got a number");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "A", "datatype": "FP32",
      "shape": [1], "data": [1], "parameters": [1]}]})"),
            "inputs[0].parameters (A): expected an object, got an array");
  EXPECT_EQ(
      ParseError(R"({"inputs": [{"name": "A", "datatype": "FP32",
      "shape": [1], "data": [1],
      "parameters": {"shared_memory_region": "r"}}]})"),
      "inputs[0].parameters.shared_memory_region (A): shared memory is not "
      "supported");
}

TEST(ParseInferRequestTest, RequestFieldErrors) {
  EXPECT_THAT(ParseError(R"({"inputs": [)"), StartsWith("malformed JSON: "));
  EXPECT_THAT(ParseError(""), StartsWith("malformed JSON: "));
  EXPECT_THAT(ParseError(R"({"inputs": [], "x": 1e400})"),
              StartsWith("malformed JSON: "));
  EXPECT_EQ(ParseError("[1]"), "request: expected a JSON object, got an array");
  EXPECT_EQ(ParseError("{}"), "inputs: missing");
  EXPECT_EQ(ParseError(R"({"inputs": {}})"),
            "inputs: expected an array, got an object");
  EXPECT_EQ(ParseError(R"({"inputs": [], "id": 5})"),
            "id: expected a string, got a number");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": "x"})"),
            "parameters: expected an object, got a string");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"p": null}})"),
            "parameters.p: expected a boolean, number or string, got null");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"p": [1]}})"),
            "parameters.p: expected a boolean, number or string, got an "
            "array");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": {}})"),
            "outputs: expected an array, got an object");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": ["A"]})"),
            "outputs[0]: expected an object, got a string");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{}]})"),
            "outputs[0].name: missing");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "A",
      "parameters": {"classification": 3}}]})"),
            "outputs[0].parameters.classification (A): the classification "
            "extension is not supported");
  EXPECT_EQ(
      ParseError(R"({"inputs": [], "outputs": [{"name": "A",
      "parameters": {"shared_memory_region": "r"}}]})"),
      "outputs[0].parameters.shared_memory_region (A): shared memory is not "
      "supported");
}

TEST(ParseInferRequestTest, NestedDataMustHaveTheShape) {
  // The right element count, nested the wrong way.
  EXPECT_EQ(DataError("FP32", "[3,2]", "[[1,2,3],[4,5,6]]"),
            "inputs[0].data (X): 2 elements, but dimension 0 of shape [3,2] "
            "is 3");
  EXPECT_EQ(DataError("FP32", "[1,4]", "[[1,2],[3,4]]"),
            "inputs[0].data (X): 2 elements, but dimension 0 of shape [1,4] "
            "is 1");
  EXPECT_EQ(DataError("FP32", "[2,3]", "[[1,2,3],[4]]"),
            "inputs[0].data[1] (X): 1 elements, but dimension 1 of shape "
            "[2,3] is 3");
  EXPECT_EQ(DataError("FP32", "[2,2]", "[[1,2],3]"),
            "inputs[0].data[1] (X): expected an array of 2 elements "
            "(dimension 1 of shape [2,2]), got a number");
  // Nested deeper than the shape.
  EXPECT_EQ(DataError("FP32", "[1,1]", "[[[1]]]"),
            "inputs[0].data[0][0] (X): expected a number, got an array");
  EXPECT_EQ(DataError("FP32", "[2]", "[[1],[2]]"),
            "inputs[0].data[0] (X): expected a number, got an array");
  // Flat data holding an array.
  EXPECT_EQ(DataError("FP32", "[2]", "[1,[2]]"),
            "inputs[0].data[1] (X): expected a number, got an array");
  // Nested element paths follow the shape.
  EXPECT_EQ(DataError("INT32", "[2,2,2]", "[[[1,2],[3,4]],[[5,6],[7,true]]]"),
            "inputs[0].data[1][1][1] (X): expected an integer, got a boolean");
  // A lone scalar is one element.
  EXPECT_THAT(ParseOk(OneInput("FP32", "[]", "2.5"))
                  .request.inputs(0)
                  .contents()
                  .fp32_contents(),
              ElementsAre(2.5f));
  EXPECT_THAT(ParseOk(OneInput("FP32", "[1,1]", "[7]"))
                  .request.inputs(0)
                  .contents()
                  .fp32_contents(),
              ElementsAre(7.0f));
}

TEST(ParseInferRequestTest, DeepNestingIsRefused) {
  const auto ones = [](int rank) {
    std::string shape = "[1";
    for (int i = 1; i < rank; ++i) shape += ",1";
    return shape + "]";
  };
  const auto nest = [](int depth) {
    std::string data = "1";
    for (int i = 0; i < depth; ++i) data = "[" + data + "]";
    return data;
  };
  EXPECT_THAT(DataError("FP32", ones(40), nest(40)),
              AllOf(StartsWith("inputs[0].data[0][0]"),
                    HasSubstr(" (X): arrays nested deeper than 32 levels")));
  EXPECT_EQ(ParseOk(OneInput("FP32", ones(32), nest(32)))
                .request.inputs(0)
                .contents()
                .fp32_contents_size(),
            1);
}

// ---- Responses
// ----------------------------------------------------------------

constexpr char kTypedResponse[] = R"pb(
  model_name: "m"
  model_version: "1"
  outputs {
    name: "PROBABILITIES"
    datatype: "FP32"
    shape: [ 2, 2 ]
    contents { fp32_contents: [ 0.1, 0.9, 0.25, 0.75 ] }
  }
  outputs {
    name: "TOKEN_COUNT"
    datatype: "INT32"
    shape: [ 2 ]
    contents { int_contents: [ 3, -4 ] }
  }
)pb";

TEST(EncodeInferResponseTest, TypedContentsAsJson) {
  auto response = FromText<ModelInferResponse>(kTypedResponse);
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, OutputEncoding{});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_FALSE(encoded->has_binary);
  EXPECT_EQ(encoded->json_size, encoded->body.size());
  // Field order as Triton's; no "id" when empty; floats printed shortest.
  EXPECT_EQ(encoded->body,
            R"({"model_name":"m","model_version":"1","outputs":[)"
            R"({"name":"PROBABILITIES","datatype":"FP32","shape":[2,2],)"
            R"("data":[0.1,0.9,0.25,0.75]},)"
            R"({"name":"TOKEN_COUNT","datatype":"INT32","shape":[2],)"
            R"("data":[3,-4]}]})");
}

TEST(EncodeInferResponseTest, IdParametersAndNonFiniteFloats) {
  auto response = FromText<ModelInferResponse>(R"pb(
    model_name: "m"
    model_version: "2"
    id: "abc"
    parameters {
      key: "p"
      value { int64_param: 5 }
    }
    outputs {
      name: "S"
      datatype: "FP32"
      shape: [ 3 ]
      parameters {
        key: "q"
        value { string_param: "x" }
      }
      contents { fp32_contents: [ 1, 2, 3 ] }
    }
  )pb");
  response.mutable_outputs(0)->mutable_contents()->set_fp32_contents(
      1, std::numeric_limits<float>::quiet_NaN());
  response.mutable_outputs(0)->mutable_contents()->set_fp32_contents(
      2, -std::numeric_limits<float>::infinity());
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, OutputEncoding{});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->body,
            R"({"id":"abc","model_name":"m","model_version":"2",)"
            R"("parameters":{"p":5},"outputs":[{"name":"S","datatype":"FP32",)"
            R"("shape":[3],"parameters":{"q":"x"},"data":[1.0,null,null]}]})");
}

TEST(EncodeInferResponseTest, RawContentsDecodeLittleEndian) {
  ModelInferResponse response = FromText<ModelInferResponse>(R"pb(
    model_name: "m"
    model_version: "1"
    outputs {
      name: "F"
      datatype: "FP32"
      shape: [ 1, 2 ]
    }
    outputs {
      name: "I"
      datatype: "INT64"
      shape: [ 2 ]
    }
    outputs {
      name: "T"
      datatype: "BYTES"
      shape: [ 2 ]
    }
    outputs {
      name: "B"
      datatype: "BOOL"
      shape: [ 2 ]
    }
    outputs {
      name: "U"
      datatype: "UINT8"
      shape: [ 1 ]
    }
    outputs {
      name: "H"
      datatype: "FP16"
      shape: [ 3 ]
    }
    outputs {
      name: "G"
      datatype: "BF16"
      shape: [ 1 ]
    }
  )pb");
  response.add_raw_output_contents(LE<float>({0.5f, -1.0f}));
  response.add_raw_output_contents(LE<int64_t>({-3, 1LL << 40}));
  response.add_raw_output_contents(BytesLE({"hi", ""}));
  response.add_raw_output_contents(std::string("\x01\x00", 2));
  response.add_raw_output_contents(std::string("\xff", 1));
  // 1.0, -2.0, and the smallest subnormal half (2^-24).
  response.add_raw_output_contents(LE<uint16_t>({0x3c00, 0xc000, 0x0001}));
  response.add_raw_output_contents(LE<uint16_t>({0x3fc0}));  // 1.5
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, OutputEncoding{});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  const Json j = Json::parse(encoded->body);
  EXPECT_EQ(j["outputs"][0]["data"], Json::parse("[0.5,-1.0]"));
  EXPECT_EQ(j["outputs"][0]["shape"], Json::parse("[1,2]"));
  EXPECT_EQ(j["outputs"][1]["data"], Json::parse("[-3,1099511627776]"));
  EXPECT_EQ(j["outputs"][2]["data"], Json::parse(R"(["hi",""])"));
  EXPECT_EQ(j["outputs"][3]["data"], Json::parse("[true,false]"));
  EXPECT_EQ(j["outputs"][4]["data"], Json::parse("[255]"));
  ASSERT_EQ(j["outputs"][5]["data"].size(), 3u);
  EXPECT_EQ(j["outputs"][5]["data"][0].get<double>(), 1.0);
  EXPECT_EQ(j["outputs"][5]["data"][1].get<double>(), -2.0);
  EXPECT_FLOAT_EQ(j["outputs"][5]["data"][2].get<float>(),
                  std::ldexp(1.0f, -24));
  EXPECT_EQ(j["outputs"][6]["data"][0].get<double>(), 1.5);
}

TEST(EncodeInferResponseTest, BinaryOutputs) {
  auto response = FromText<ModelInferResponse>(kTypedResponse);
  OutputEncoding encoding;
  encoding.binary_default = true;
  encoding.binary_by_output["TOKEN_COUNT"] = false;
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, encoding);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_TRUE(encoded->has_binary);
  const std::string json = encoded->body.substr(0, encoded->json_size);
  EXPECT_EQ(json, R"({"model_name":"m","model_version":"1","outputs":[)"
                  R"({"name":"PROBABILITIES","datatype":"FP32","shape":[2,2],)"
                  R"("parameters":{"binary_data_size":16}},)"
                  R"({"name":"TOKEN_COUNT","datatype":"INT32","shape":[2],)"
                  R"("data":[3,-4]}]})");
  EXPECT_EQ(encoded->body.substr(encoded->json_size),
            LE<float>({0.1f, 0.9f, 0.25f, 0.75f}));
}

TEST(EncodeInferResponseTest, BinaryOutputsFromRawInOrder) {
  ModelInferResponse response = FromText<ModelInferResponse>(R"pb(
    model_name: "m"
    model_version: "1"
    outputs {
      name: "A"
      datatype: "INT32"
      shape: [ 1 ]
    }
    outputs {
      name: "T"
      datatype: "BYTES"
      shape: [ 1 ]
    }
    outputs {
      name: "C"
      datatype: "FP32"
      shape: [ 2 ]
    }
  )pb");
  response.add_raw_output_contents(LE<int32_t>({9}));
  response.add_raw_output_contents(BytesLE({"xy"}));
  response.add_raw_output_contents(LE<float>({2.0f, 4.0f}));
  OutputEncoding encoding;
  encoding.binary_by_output["A"] = true;
  encoding.binary_by_output["C"] = true;
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, encoding);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  const Json j = Json::parse(encoded->body.substr(0, encoded->json_size));
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 4);
  EXPECT_FALSE(j["outputs"][0].contains("data"));
  EXPECT_EQ(j["outputs"][1]["data"], Json::parse(R"(["xy"])"));
  EXPECT_FALSE(j["outputs"][1].contains("parameters"));
  EXPECT_EQ(j["outputs"][2]["parameters"]["binary_data_size"], 8);
  EXPECT_EQ(encoded->body.substr(encoded->json_size),
            LE<int32_t>({9}) + LE<float>({2.0f, 4.0f}));
}

TEST(EncodeInferResponseTest, BinaryBytesFromTypedContents) {
  auto response = FromText<ModelInferResponse>(R"pb(
    model_name: "m"
    model_version: "1"
    outputs {
      name: "T"
      datatype: "BYTES"
      shape: [ 2 ]
      contents { bytes_contents: [ "a", "bcd" ] }
    }
  )pb");
  OutputEncoding encoding;
  encoding.binary_default = true;
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, encoding);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->body.substr(encoded->json_size), BytesLE({"a", "bcd"}));
  EXPECT_THAT(encoded->body.substr(0, encoded->json_size),
              HasSubstr(R"("parameters":{"binary_data_size":12})"));
}

TEST(EncodeInferResponseTest, InvalidUtf8IsReplaced) {
  auto response = FromText<ModelInferResponse>(R"pb(
    model_name: "m"
    model_version: "1"
    outputs {
      name: "T"
      datatype: "BYTES"
      shape: [ 1 ]
      contents { bytes_contents: [ "a\xff" ] }
    }
  )pb");
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, OutputEncoding{});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_THAT(encoded->body, HasSubstr("\"data\":[\"a\xEF\xBF\xBD\"]"));
}

TEST(EncodeInferResponseTest, MismatchedDataIsInternal) {
  auto typed = FromText<ModelInferResponse>(kTypedResponse);
  typed.mutable_outputs(1)->add_shape(2);  // [2] -> [2,2], 2 values
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(typed, OutputEncoding{});
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(encoded.status().message(),
              HasSubstr("outputs[1] (TOKEN_COUNT): contents hold 2 elements "
                        "of INT32, shape has 4"));

  ModelInferResponse raw = FromText<ModelInferResponse>(R"pb(
    outputs {
      name: "A"
      datatype: "FP32"
      shape: [ 2 ]
    }
  )pb");
  raw.add_raw_output_contents(LE<float>({1.0f}));
  encoded = EncodeInferResponse(raw, OutputEncoding{});
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(encoded.status().message(),
              HasSubstr("binary data of 4 bytes does not match shape [2]"));
  OutputEncoding binary;
  binary.binary_default = true;
  EXPECT_EQ(EncodeInferResponse(raw, binary).status().code(),
            absl::StatusCode::kInternal);

  raw.add_raw_output_contents("extra");
  EXPECT_THAT(EncodeInferResponse(raw, OutputEncoding{}).status().message(),
              HasSubstr("2 raw_output_contents for 1 outputs"));

  auto unknown = FromText<ModelInferResponse>(R"pb(
    outputs {
      name: "A"
      datatype: "COMPLEX"
      shape: [ 0 ]
    }
  )pb");
  EXPECT_THAT(EncodeInferResponse(unknown, OutputEncoding{}).status().message(),
              HasSubstr("unknown datatype 'COMPLEX'"));
}

TEST(EncodeInferResponseTest, RoundTripThroughTheParser) {
  // What a client decodes from a binary response parses back unchanged.
  auto response = FromText<ModelInferResponse>(kTypedResponse);
  OutputEncoding encoding;
  encoding.binary_default = true;
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(response, encoding);
  ASSERT_TRUE(encoded.ok());
  Json j = Json::parse(encoded->body.substr(0, encoded->json_size));
  Json request = {{"inputs", j["outputs"]}};
  const std::string json = request.dump();
  const ParsedInferRequest parsed =
      ParseOk(json + encoded->body.substr(encoded->json_size),
              std::to_string(json.size()));
  ASSERT_EQ(parsed.request.raw_input_contents_size(), 2);
  EXPECT_EQ(parsed.request.raw_input_contents(0),
            LE<float>({0.1f, 0.9f, 0.25f, 0.75f}));
  EXPECT_EQ(parsed.request.raw_input_contents(1), LE<int32_t>({3, -4}));
}

// ---- Metadata, config, statistics
// -----------------------------------------------

TEST(MetadataJsonTest, ServerMetadata) {
  auto m = FromText<inference::ServerMetadataResponse>(R"pb(
    name: "fusionserve"
    version: "0.1.0"
    extensions: [ "binary_tensor_data", "statistics" ]
  )pb");
  EXPECT_EQ(ServerMetadataToJson(m),
            R"({"name":"fusionserve","version":"0.1.0",)"
            R"("extensions":["binary_tensor_data","statistics"]})");
  EXPECT_EQ(ServerMetadataToJson({}),
            R"({"name":"","version":"","extensions":[]})");
}

TEST(MetadataJsonTest, ModelMetadata) {
  auto m = FromText<inference::ModelMetadataResponse>(R"pb(
    name: "m"
    versions: [ "1", "2" ]
    platform: "fusionserve"
    inputs {
      name: "TEXT"
      datatype: "BYTES"
      shape: [ -1 ]
    }
    outputs {
      name: "PROBABILITIES"
      datatype: "FP32"
      shape: [ -1, 3 ]
    }
  )pb");
  EXPECT_EQ(ModelMetadataToJson(m),
            R"({"name":"m","versions":["1","2"],"platform":"fusionserve",)"
            R"("inputs":[{"name":"TEXT","datatype":"BYTES","shape":[-1]}],)"
            R"("outputs":[{"name":"PROBABILITIES","datatype":"FP32",)"
            R"("shape":[-1,3]}]})");
}

TEST(MetadataJsonTest, ModelConfigIsTheConfigItself) {
  auto c = FromText<inference::ModelConfigResponse>(R"pb(
    config {
      name: "m"
      platform: "fusionserve"
      max_batch_size: 32
      input {
        name: "FEATURES"
        data_type: TYPE_FP32
        dims: [ 5 ]
      }
      output {
        name: "SCORE"
        data_type: TYPE_FP32
        dims: [ 1 ]
      }
      instance_group { count: 2 kind: KIND_CPU }
      dynamic_batching {
        max_queue_delay_microseconds: 9007199254740993
        priority_levels: 2
      }
    }
  )pb");
  const std::string text = ModelConfigToJson(c);
  EXPECT_EQ(text,
            R"({"name":"m","platform":"fusionserve","max_batch_size":32,)"
            R"("input":[{"name":"FEATURES","data_type":"TYPE_FP32","dims":[5],)"
            R"("optional":false}],)"
            R"("output":[{"name":"SCORE","data_type":"TYPE_FP32","dims":[1]}],)"
            R"("instance_group":[{"name":"","count":2,"kind":"KIND_CPU"}],)"
            R"("dynamic_batching":{"preferred_batch_size":[],)"
            R"("max_queue_delay_microseconds":9007199254740993,)"
            R"("priority_levels":2}})");
  // 64-bit integers are numbers, exactly.
  EXPECT_EQ(
      Json::parse(text)["dynamic_batching"]["max_queue_delay_microseconds"]
          .get<uint64_t>(),
      9007199254740993u);
}

TEST(MetadataJsonTest, ModelConfigWithoutDynamicBatching) {
  auto c = FromText<inference::ModelConfigResponse>(R"pb(
    config { name: "m" }
  )pb");
  const Json j = Json::parse(ModelConfigToJson(c));
  EXPECT_FALSE(j.contains("dynamic_batching"));
  EXPECT_FALSE(j.contains("config"));
  EXPECT_EQ(j["max_batch_size"], 0);
  EXPECT_EQ(j["input"], Json::array());
  // An empty but set dynamic_batching is printed (perf_analyzer checks it).
  c.mutable_config()->mutable_dynamic_batching();
  EXPECT_TRUE(Json::parse(ModelConfigToJson(c)).contains("dynamic_batching"));
}

TEST(MetadataJsonTest, StatisticsAreNumbersWithEveryDuration) {
  auto s = FromText<inference::ModelStatisticsResponse>(R"pb(
    model_stats {
      name: "m"
      version: "1"
      last_inference: 1700000000123
      inference_count: 18446744073709551615
      execution_count: 7
      inference_stats {
        success { count: 10 ns: 123456789 }
        queue { count: 10 ns: 5000 }
      }
      batch_stats {
        batch_size: 4
        compute_infer { count: 2 ns: 800 }
      }
    }
  )pb");
  const std::string text = ModelStatisticsToJson(s);
  const Json j = Json::parse(text);
  ASSERT_EQ(j["model_stats"].size(), 1u);
  const Json& m = j["model_stats"][0];
  EXPECT_EQ(m["name"], "m");
  EXPECT_EQ(m["version"], "1");
  EXPECT_TRUE(m["last_inference"].is_number_unsigned());
  EXPECT_EQ(m["last_inference"].get<uint64_t>(), 1700000000123u);
  EXPECT_EQ(m["inference_count"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(m["execution_count"].get<uint64_t>(), 7u);
  const Json& stats = m["inference_stats"];
  for (const char* key :
       {"success", "fail", "queue", "compute_input", "compute_infer",
        "compute_output", "cache_hit", "cache_miss"}) {
    ASSERT_TRUE(stats.contains(key)) << key;
    EXPECT_TRUE(stats[key]["count"].is_number_unsigned()) << key;
    EXPECT_TRUE(stats[key]["ns"].is_number_unsigned()) << key;
  }
  EXPECT_EQ(stats["success"]["count"], 10);
  EXPECT_EQ(stats["success"]["ns"], 123456789);
  EXPECT_EQ(stats["fail"], Json::parse(R"({"count":0,"ns":0})"));
  EXPECT_EQ(stats["queue"]["ns"], 5000);
  ASSERT_EQ(m["batch_stats"].size(), 1u);
  EXPECT_EQ(m["batch_stats"][0], Json::parse(R"({"batch_size":4,
              "compute_input":{"count":0,"ns":0},
              "compute_infer":{"count":2,"ns":800},
              "compute_output":{"count":0,"ns":0}})"));
  // Field order as the proto declares it.
  EXPECT_THAT(text, StartsWith(R"({"model_stats":[{"name":"m","version":"1",)"
                               R"("last_inference":1700000000123,)"));
  EXPECT_EQ(ModelStatisticsToJson({}), R"({"model_stats":[]})");
}

TEST(MetadataJsonTest, ReadyAndErrors) {
  EXPECT_EQ(ModelReadyToJson("m", true), R"({"name":"m","ready":true})");
  EXPECT_EQ(ModelReadyToJson("n", false), R"({"name":"n","ready":false})");
  EXPECT_EQ(ErrorToJson("bad \"x\"\n"), R"({"error":"bad \"x\"\n"})");
  EXPECT_EQ(ErrorToJson("a\xff"), "{\"error\":\"a\xEF\xBF\xBD\"}");
}

TEST(HttpStatusTest, Mapping) {
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kOutOfRange), 400);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kUnknown), 500);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kAlreadyExists), 500);
}

}  // namespace
}  // namespace fusion::api::v2
