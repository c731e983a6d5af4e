#include "server/batching/options.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace fusion::batching {
namespace {

// Sanity bounds: far above any real setting, low enough that per-level and
// per-bucket arrays stay small.
constexpr int kMaxPriorityLevels = 64;
constexpr int kMaxBuckets = 64;
constexpr int kMaxExecutors = 1024;

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("batching options: ", what));
}

bool FiniteNonNegative(absl::Duration d) {
  return d >= absl::ZeroDuration() && d != absl::InfiniteDuration();
}

}  // namespace

absl::Status ValidateOptions(const BatchSchedulerOptions& o) {
  if (o.max_batch_size < 1) return Invalid("max_batch_size must be >= 1");
  if (!FiniteNonNegative(o.max_queue_delay)) {
    return Invalid("max_queue_delay must be finite and >= 0");
  }
  for (int size : o.preferred_batch_sizes) {
    if (size < 1 || size > o.max_batch_size) {
      return Invalid(absl::StrCat(
          "preferred batch size ", size,
          " is outside [1, max_batch_size=", o.max_batch_size, "]"));
    }
  }
  if (static_cast<int>(o.length_bucket_edges.size()) >= kMaxBuckets) {
    return Invalid(
        absl::StrCat("at most ", kMaxBuckets - 1, " length_bucket_edges"));
  }
  int previous = 0;
  for (int edge : o.length_bucket_edges) {
    if (edge <= previous) {
      return Invalid("length_bucket_edges must be > 0 and strictly increasing");
    }
    previous = edge;
  }
  if (!o.bucket_max_batch_sizes.empty()) {
    if (o.bucket_max_batch_sizes.size() != o.length_bucket_edges.size() + 1) {
      return Invalid(absl::StrCat(
          "bucket_max_batch_sizes needs one size per length bucket (",
          o.length_bucket_edges.size() + 1, ")"));
    }
    for (int size : o.bucket_max_batch_sizes) {
      if (size < 1 || size > o.max_batch_size) {
        return Invalid("bucket_max_batch_sizes must be in [1, max_batch_size]");
      }
    }
  }
  if (o.priority_levels < 1 || o.priority_levels > kMaxPriorityLevels) {
    return Invalid(absl::StrCat("priority_levels must be in [1, ",
                                kMaxPriorityLevels, "]"));
  }
  if (!(o.merge_cost_tokens >= 0 && std::isfinite(o.merge_cost_tokens))) {
    return Invalid("merge_cost_tokens must be finite and >= 0");
  }
  if (o.starvation_age <= absl::ZeroDuration()) {
    return Invalid("starvation_age must be > 0");
  }
  if (o.max_queue_size < 1) return Invalid("max_queue_size must be >= 1");
  if (o.max_queue_wait <= absl::ZeroDuration()) {
    return Invalid("max_queue_wait must be > 0 (infinite: no bound)");
  }
  if (o.num_executors < 1 || o.num_executors > kMaxExecutors) {
    return Invalid(
        absl::StrCat("num_executors must be in [1, ", kMaxExecutors, "]"));
  }
  if (!FiniteNonNegative(o.sweep_interval) ||
      o.sweep_interval == absl::ZeroDuration()) {
    return Invalid("sweep_interval must be finite and > 0");
  }
  return absl::OkStatus();
}

}  // namespace fusion::batching
