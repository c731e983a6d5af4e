#include "client/retry_policy.h"

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

TEST(RetryPolicy, OnlyUnavailableIsRetried) {
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kResourceExhausted));
}

TEST(RetryPolicy, ExponentialAndCapped) {
  RetryOptions o;
  o.initial_backoff = absl::Milliseconds(100);
  o.max_backoff = absl::Milliseconds(500);
  o.multiplier = 2;
  o.jitter = 0;
  EXPECT_EQ(BackoffBefore(o, 1, 0.5), absl::ZeroDuration());
  EXPECT_EQ(BackoffBefore(o, 2, 0.5), absl::Milliseconds(100));
  EXPECT_EQ(BackoffBefore(o, 3, 0.5), absl::Milliseconds(200));
  EXPECT_EQ(BackoffBefore(o, 4, 0.5), absl::Milliseconds(400));
  EXPECT_EQ(BackoffBefore(o, 5, 0.5), absl::Milliseconds(500));
  EXPECT_EQ(BackoffBefore(o, 30, 0.5), absl::Milliseconds(500));
}

TEST(RetryPolicy, JitterStaysInBounds) {
  RetryOptions o;
  o.initial_backoff = absl::Milliseconds(100);
  o.jitter = 0.2;
  EXPECT_EQ(BackoffBefore(o, 2, 0.0), absl::Milliseconds(80));
  EXPECT_EQ(BackoffBefore(o, 2, 0.5), absl::Milliseconds(100));
  EXPECT_LE(BackoffBefore(o, 2, 0.999999), absl::Milliseconds(120));
}

TEST(RetryPolicy, Validation) {
  RetryOptions o;
  EXPECT_TRUE(ValidateRetryOptions(o).ok());
  o.max_attempts = 0;
  EXPECT_FALSE(ValidateRetryOptions(o).ok());
  o = RetryOptions();
  o.max_backoff = absl::Milliseconds(1);
  EXPECT_FALSE(ValidateRetryOptions(o).ok());
  o = RetryOptions();
  o.jitter = 1.5;
  EXPECT_FALSE(ValidateRetryOptions(o).ok());
}

}  // namespace
}  // namespace fusion::client
