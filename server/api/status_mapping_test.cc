#include "server/api/status_mapping.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace fusion::api {
namespace {

struct Mapping {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
};

// Every non-OK absl code, and the gRPC code clients must see for it.
const std::vector<Mapping> kMappings = {
    {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
    {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
    {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
    {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
    {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
    {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
    {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
    {absl::StatusCode::kResourceExhausted,
     grpc::StatusCode::RESOURCE_EXHAUSTED},
    {absl::StatusCode::kFailedPrecondition,
     grpc::StatusCode::FAILED_PRECONDITION},
    {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
    {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
    {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
    {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
    {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
    {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
    {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
};

TEST(StatusMappingTest, TableCoversEveryAbslErrorCode) {
  // absl's codes are 1..16; a code added to the table twice, or left out,
  // would make the test below prove less than it claims.
  std::set<int> covered;
  for (const Mapping& m : kMappings) {
    covered.insert(static_cast<int>(m.absl_code));
  }
  EXPECT_EQ(covered.size(), kMappings.size());
  for (int code = 1; code <= 16; ++code) {
    EXPECT_TRUE(covered.count(code))
        << absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }
}

TEST(StatusMappingTest, EachCodeMapsAndKeepsItsMessage) {
  for (const Mapping& m : kMappings) {
    const std::string message =
        "features['amount']: " + absl::StatusCodeToString(m.absl_code);
    const grpc::Status status =
        ToGrpcStatus(absl::Status(m.absl_code, message));
    EXPECT_EQ(status.error_code(), m.grpc_code)
        << absl::StatusCodeToString(m.absl_code);
    EXPECT_EQ(status.error_message(), message);
    EXPECT_FALSE(status.ok());
  }
}

TEST(StatusMappingTest, OkIsOkWithNoMessage) {
  const grpc::Status status = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(status.error_message(), "");
}

TEST(StatusMappingTest, MessageIsKeptByteForByte) {
  // Not ASCII, quotes and a newline: passed through untouched.
  const std::string message = "text: caf\xC3\xA9 'x'\n\"y\"";
  const grpc::Status status = ToGrpcStatus(absl::InvalidArgumentError(message));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), message);
}

TEST(StatusMappingTest, ErrorWithEmptyMessageStaysAnError) {
  const grpc::Status status = ToGrpcStatus(absl::UnavailableError(""));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "");
}

TEST(StatusMappingTest, CodeOutsideAbslRangeIsUnknown) {
  // absl itself reports a code it does not know as kUnknown.
  const grpc::Status status =
      ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "odd"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(status.error_message(), "odd");
}

TEST(StatusMappingTest, LongMessageIsCutAtAUtf8BoundaryAndSaysSo) {
  // "model '" then 2-byte characters: the cut must not split one.
  std::string name;
  for (int i = 0; i < 40000; ++i) name += "\xC3\xA9";
  const std::string message = "model '" + name + "' not found";
  const grpc::Status status = ToGrpcStatus(absl::NotFoundError(message));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  const std::string& got = status.error_message();
  EXPECT_LE(got.size(), kMaxStatusMessageBytes);
  EXPECT_EQ(got.rfind("model '\xC3\xA9", 0), 0u) << got.substr(0, 20);
  const std::string tail = "... (80018-byte message cut)";
  ASSERT_GE(got.size(), tail.size());
  EXPECT_EQ(got.substr(got.size() - tail.size()), tail);
  // Whole characters only before the tail.
  const std::string kept = got.substr(0, got.size() - tail.size());
  EXPECT_EQ((kept.size() - 7) % 2, 0u) << kept.size();
}

TEST(StatusMappingTest, MessageAtTheLimitIsKept) {
  const std::string message(kMaxStatusMessageBytes, 'x');
  EXPECT_EQ(ToGrpcStatus(absl::InternalError(message)).error_message(),
            message);
}

}  // namespace
}  // namespace fusion::api
