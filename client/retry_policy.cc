#include "client/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace fusion::client {

absl::Status ValidateRetryOptions(const RetryOptions& options) {
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("retry: max_attempts must be >= 1");
  }
  if (options.initial_backoff < absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "retry: need 0 <= initial_backoff <= max_backoff");
  }
  if (options.multiplier < 1.0) {
    return absl::InvalidArgumentError("retry: multiplier must be >= 1");
  }
  if (options.jitter < 0.0 || options.jitter >= 1.0) {
    return absl::InvalidArgumentError("retry: jitter must be in [0, 1)");
  }
  return absl::OkStatus();
}

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable;
}

absl::Duration BackoffBefore(const RetryOptions& options, int attempt,
                             double unit_random) {
  if (attempt < 2) return absl::ZeroDuration();
  const double base_s = absl::ToDoubleSeconds(options.initial_backoff) *
                        std::pow(options.multiplier, attempt - 2);
  const double capped_s =
      std::min(base_s, absl::ToDoubleSeconds(options.max_backoff));
  const double factor = 1.0 + options.jitter * (2.0 * unit_random - 1.0);
  return absl::Seconds(std::max(0.0, capped_s * factor));
}

}  // namespace fusion::client
