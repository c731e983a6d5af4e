#include "server/serving/inference_stats.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace fusion::serving {
namespace {

uint64_t Nanoseconds(absl::Duration d) {
  return static_cast<uint64_t>(
      std::max<int64_t>(0, absl::ToInt64Nanoseconds(d)));
}

void AddTo(DurationTotal& total, absl::Duration d) {
  ++total.count;
  total.ns += Nanoseconds(d);
}

}  // namespace

void InferenceStats::AtomicDuration::Add(absl::Duration d) {
  count.fetch_add(1, std::memory_order_relaxed);
  ns.fetch_add(Nanoseconds(d), std::memory_order_relaxed);
}

DurationTotal InferenceStats::AtomicDuration::Read() const {
  return {count.load(std::memory_order_relaxed),
          ns.load(std::memory_order_relaxed)};
}

void InferenceStats::RecordSuccess(absl::Duration total, absl::Duration queue,
                                   absl::Duration compute_input,
                                   absl::Duration compute_infer, int rows) {
  success_.Add(total);
  queue_.Add(queue);
  compute_input_.Add(compute_input);
  compute_infer_.Add(compute_infer);
  inference_count_.fetch_add(static_cast<uint64_t>(rows),
                             std::memory_order_relaxed);
  last_inference_ms_.store(
      static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())),
      std::memory_order_relaxed);
}

void InferenceStats::RecordFailure(absl::Duration total) { fail_.Add(total); }

void InferenceStats::RecordBatch(int size, absl::Duration collation,
                                 absl::Duration forward) {
  execution_count_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  BatchTotals& totals = batches_[size];
  AddTo(totals.compute_input, collation);
  AddTo(totals.compute_infer, forward);
}

InferenceStatsSnapshot InferenceStats::Read() const {
  InferenceStatsSnapshot snapshot;
  snapshot.success = success_.Read();
  snapshot.fail = fail_.Read();
  snapshot.queue = queue_.Read();
  snapshot.compute_input = compute_input_.Read();
  snapshot.compute_infer = compute_infer_.Read();
  snapshot.inference_count = inference_count_.load(std::memory_order_relaxed);
  snapshot.execution_count = execution_count_.load(std::memory_order_relaxed);
  snapshot.last_inference_ms =
      last_inference_ms_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  snapshot.batches = batches_;
  return snapshot;
}

}  // namespace fusion::serving
