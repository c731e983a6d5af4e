// Measures what one forward costs regardless of its size, in token positions:
// the batcher's merge_cost_tokens (see server/batching/task_queue.h).
//
// Model: a forward of n requests padded to L tokens takes about
//   fixed + n x (per_request + per_token x L).
// Three timed shapes give the three terms; the result is fixed / per_token.
// On a CPU this is a handful of positions (padding costs real compute); on a
// GPU, where a small forward is all launch overhead, it is large, so buckets
// merge freely there.
#ifndef FUSION_SERVER_SERVING_FORWARD_COST_H_
#define FUSION_SERVER_SERVING_FORWARD_COST_H_

#include <vector>

#include "absl/status/statusor.h"
#include "server/runtime/model_runtime.h"

namespace fusion::serving {

// A synthetic batch: `batch` copies of one input `tokens` long.
struct BatchShape {
  int batch = 1;
  int tokens = 1;
};

// The median seconds of a forward of each shape over `repetitions` rounds,
// repetitions outermost, so that drift during the measurement hits every
// shape alike. Errors: the runtime's own, if a forward fails.
absl::StatusOr<std::vector<double>> MedianForwardSeconds(
    runtime::ModelRuntime& runtime, int num_features,
    const std::vector<BatchShape>& shapes, int repetitions);

struct ForwardCostOptions {
  int num_features = 1;  // the model's feature count
  int max_tokens = 128;  // the longest input the model accepts
  int max_batch_size = 64;
  int repetitions = 7;  // per shape; the median counts
};

// Runs 3 x repetitions forwards (shapes interleaved, so drift hits all
// three alike) and returns fixed / per_token, clamped to
// [0, max_batch_size x max_tokens]; the upper end when padding measures as
// free. 0 when max_batch_size is 1 (nothing to merge). Errors: the
// runtime's own, if a forward fails.
absl::StatusOr<double> MeasureMergeCostTokens(
    runtime::ModelRuntime& runtime, const ForwardCostOptions& options);

// The largest batch worth forming in each length bucket: a bucket's rows
// (its longest length, max_tokens for the last) are forwarded in batches
// of 1, 2, 4, ... up to max_batch_size, and the cap is the smallest size
// within 5% of the most rows per second. On a CPU, batches of long rows
// get slower per row past a point (this model at 128 tokens: 16 rows ran
// 3.2x the rows/s of 64); a queue that always fills max_batch_size would
// then serve less than it could, in an overload the most.
// Against a busy machine (a load beside it once gave 2 for the <=16-token
// bucket and 64 for <=10): every size of a bucket is timed in each round,
// the rounds interleaved, and each size's median counts, so that a stall
// hits one sample of a few sizes rather than a whole size; and a shorter
// bucket never gets a smaller cap than a longer one (per row, longer rows
// cost more, so their best batch is not larger). One entry per bucket
// (edges + 1), each in [1, max_batch_size]. Errors: the runtime's own.
absl::StatusOr<std::vector<int>> MeasureBucketBatchCaps(
    runtime::ModelRuntime& runtime, const ForwardCostOptions& options,
    const std::vector<int>& length_bucket_edges);

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_FORWARD_COST_H_
