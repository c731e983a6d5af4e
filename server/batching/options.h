// Tunables of the dynamic batcher, with their defaults, and their validation.
//
// Plain data: BatchScheduler::Create() validates a copy and rejects a bad one
// with INVALID_ARGUMENT, so no other code has to re-check these invariants.
#ifndef FUSION_SERVER_BATCHING_OPTIONS_H_
#define FUSION_SERVER_BATCHING_OPTIONS_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace fusion::batching {

struct BatchSchedulerOptions {
  // A batch is dispatched once it holds max_batch_size tasks, or once its
  // oldest task has waited max_queue_delay. 0, the default, is
  // work-conserving: a free executor takes what is queued at once, and
  // batches grow only while every executor is busy. Finite and >= 0.
  int max_batch_size = 64;
  absl::Duration max_queue_delay = absl::ZeroDuration();

  // Batch sizes the model runs best at, each in [1, max_batch_size], any
  // order. A bucket holding at least the smallest of them dispatches the
  // largest one it can fill at once, instead of waiting for the delay.
  std::vector<int> preferred_batch_sizes;

  // Token-length bucket edges, strictly increasing and > 0. Bucket i holds
  // lengths in (edge[i-1], edge[i]]; lengths above the last edge form a final
  // bucket. A batch is formed from one bucket so that it pads to a similar
  // length; empty: a single bucket.
  std::vector<int> length_bucket_edges = {16, 32, 64, 128};
  // The largest batch of each bucket (length_bucket_edges.size() + 1
  // entries, each in [1, max_batch_size]): a bucket holding that many is
  // full, and no batch anchored in it, or merging its tasks, grows past it.
  // Empty: max_batch_size for every bucket.
  std::vector<int> bucket_max_batch_sizes;
  // The part of a forward's cost that does not grow with its size, in token
  // positions (a forward costs about this + batch size x padded length). A
  // late bucket merges with another when that computes fewer positions than
  // two forwards would (task_queue.h). 0: buckets never merge. Finite, >= 0.
  double merge_cost_tokens = 16;

  // Priorities 0 (highest) .. priority_levels - 1.
  int priority_levels = 2;
  // Ageing, so that no level starves: a task that has waited starvation_age
  // ranks as priority 0 (then oldest first). > 0; InfiniteDuration() turns
  // ageing off.
  absl::Duration starvation_age = absl::Milliseconds(100);

  // Tasks waiting, over all priorities and buckets (running batches are not
  // counted). A full queue rejects with RESOURCE_EXHAUSTED.
  int max_queue_size = 1024;
  // The queue is also full when the work queued would take longer than this
  // to compute: (queued tokens + merge_cost_tokens per batch they make,
  // each bucket's in batches of its largest size) x
  // the seconds per token of the batches computed so far
  // (BatchScheduler::RecordBatchCost), over num_executors. No estimate
  // yet: no bound. > 0; InfiniteDuration() (the default): no bound.
  // Opt-in: the estimate comes from the batches load forms, and at 70% of
  // capacity small batches' time per token overstated the work of a queue
  // (a 60-s soak saw 784 refusals at a 1-s bound).
  absl::Duration max_queue_wait = absl::InfiniteDuration();

  // Executor threads, each running one batch at a time (one per model
  // instance). Ignored in thread-free mode.
  int num_executors = 1;

  // At Shutdown(): true runs every queued task; false fails them UNAVAILABLE.
  bool drain_on_shutdown = true;

  // How often queued tasks are polled for cancellation while any wait
  // (> 0, finite). Deadlines are not polled: a task fails at its deadline.
  // Tasks picked for a batch are always checked, whatever this is.
  absl::Duration sweep_interval = absl::Milliseconds(10);
};

// OK, or INVALID_ARGUMENT naming the first bad field.
absl::Status ValidateOptions(const BatchSchedulerOptions& options);

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_OPTIONS_H_
