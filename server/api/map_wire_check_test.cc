#include "server/api/map_wire_check.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "fusion/v1/scoring.pb.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "inference/grpc_service.pb.h"

namespace fusion::api {
namespace {

// Wire-format pieces (https://protobuf.dev/programming-guides/encoding/).
std::string Varint(uint64_t value) {
  std::string out;
  do {
    out.push_back(
        static_cast<char>((value & 0x7F) | (value > 0x7F ? 0x80 : 0)));
    value >>= 7;
  } while (value != 0);
  return out;
}
std::string Tag(int field, int wire_type) {
  return Varint(static_cast<uint64_t>(field) << 3 | wire_type);
}
std::string Bytes(int field, const std::string& payload) {
  return Tag(field, 2) + Varint(payload.size()) + payload;
}
std::string Fixed32(int field) { return Tag(field, 5) + std::string(4, '\0'); }

constexpr int kFeatures = 6;  // ScoreRequest.features

absl::Status Check(const std::string& bytes,
                   const google::protobuf::Descriptor& type =
                       *fusion::v1::ScoreRequest::descriptor()) {
  google::protobuf::io::ArrayInputStream wire(bytes.data(),
                                              static_cast<int>(bytes.size()));
  return CheckMapEntryWireTypes(wire, type);
}

TEST(MapWireCheckTest, AWellTypedRequestPasses) {
  fusion::v1::ScoreRequest request;
  request.set_text("hello");
  (*request.mutable_features())["amount"] = 3.5f;
  (*request.mutable_features())["age"] = 7.0f;
  EXPECT_TRUE(Check(request.SerializeAsString()).ok());
}

TEST(MapWireCheckTest, AVarintValueIsNamedByItsKey) {
  // The parser itself accepts this and reads amount = 0.
  const std::string bytes =
      Bytes(4, "hello") +
      Bytes(kFeatures, Bytes(1, "amount") + Tag(2, 0) + Varint(5));
  fusion::v1::ScoreRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.features().at("amount"), 0.0f);

  const absl::Status status = Check(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "features['amount']: value sent with wire type varint, declared "
            "float");
}

TEST(MapWireCheckTest, TheValueBeforeTheKeyIsStillNamedByTheKey) {
  const std::string bytes =
      Bytes(kFeatures, Bytes(1, "age") + Fixed32(2)) +
      Bytes(kFeatures, Bytes(2, "xx") + Bytes(1, "amount"));
  EXPECT_EQ(Check(bytes).message(),
            "features['amount']: value sent with wire type length-delimited, "
            "declared float");
}

TEST(MapWireCheckTest, AMistypedKeyIsNamedByItsEntry) {
  const std::string bytes =
      Bytes(kFeatures, Bytes(1, "age") + Fixed32(2)) +
      Bytes(kFeatures, Tag(1, 0) + Varint(1) + Fixed32(2));
  EXPECT_EQ(Check(bytes).message(),
            "features entry 1: key sent with wire type varint, declared "
            "string");
}

TEST(MapWireCheckTest, ALongKeyIsQuotedShort) {
  const std::string key(1000, 'k');
  const std::string bytes =
      Bytes(kFeatures, Bytes(1, key) + Tag(2, 0) + Varint(1));
  const absl::Status status = Check(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 200u) << status.message();
}

TEST(MapWireCheckTest, UnknownFieldsInAnEntryAndOutsideArePassedOver) {
  const std::string bytes =
      Tag(1000, 0) + Varint(9) +
      Bytes(kFeatures, Bytes(1, "age") + Fixed32(2) + Tag(7, 0) + Varint(1));
  EXPECT_TRUE(Check(bytes).ok());
}

TEST(MapWireCheckTest, MalformedBytesAreLeftToTheParser) {
  EXPECT_TRUE(Check(std::string(64, '\xff')).ok());
  EXPECT_TRUE(Check(Tag(kFeatures, 2) + Varint(50) + "short").ok());
  EXPECT_TRUE(Check("").ok());
}

TEST(MapWireCheckTest, AV2ParameterValueOfTheWrongWireTypeIsNamed) {
  const std::string bytes =
      Bytes(1, "fusion") + Bytes(4, Bytes(1, "attention") + Fixed32(2));
  EXPECT_EQ(Check(bytes, *inference::ModelInferRequest::descriptor()).message(),
            "parameters['attention']: value sent with wire type fixed32, "
            "declared message");
}

}  // namespace
}  // namespace fusion::api
