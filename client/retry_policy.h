// When and how long to wait before retrying a unary call. Pure; thread-safe.
#ifndef FUSION_CLIENT_RETRY_POLICY_H_
#define FUSION_CLIENT_RETRY_POLICY_H_

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace fusion::client {

struct RetryOptions {
  int max_attempts = 4;  // 1: no retries
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
  double multiplier = 2.0;
  double jitter = 0.2;  // the wait is scaled by a factor in [1-j, 1+j]
};

// OK, or INVALID_ARGUMENT naming the bad field.
absl::Status ValidateRetryOptions(const RetryOptions& options);

// Only UNAVAILABLE is retried: the request did not reach a model (server
// down, draining, connection reset). Everything else is an answer.
bool IsRetryable(absl::StatusCode code);

// The wait before attempt `attempt` (2 for the first retry):
// min(max_backoff, initial_backoff * multiplier^(attempt-2)), scaled by
// 1 + jitter * (2 * unit_random - 1). `unit_random` is in [0, 1).
absl::Duration BackoffBefore(const RetryOptions& options, int attempt,
                             double unit_random);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_RETRY_POLICY_H_
