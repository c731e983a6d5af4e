// The warm-up a version runs before it is marked ready: every length bucket
// at every batch size it can be served at, so the first requests after a
// switch meet no first-shape costs (allocator growth, TorchScript's
// profiling runs, oneDNN primitive creation).
#ifndef FUSION_SERVER_SERVING_WARMUP_H_
#define FUSION_SERVER_SERVING_WARMUP_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fusion/v1/model_config.pb.h"
#include "server/runtime/model_runtime.h"
#include "server/text/wordpiece_tokenizer.h"

namespace fusion::serving {

struct WarmupShape {
  int requests = 1;
  int tokens = 3;  // [CLS] ... [SEP], padded length of the batch
};

// Batch sizes 1, 2, 4, ... below max_batch_size, the preferred sizes and
// max_batch_size, crossed with each length bucket's longest length (capped
// at max_tokens) and max_tokens.
std::vector<WarmupShape> WarmupShapes(const fusion::v1::ModelConfig& config);

// Runs config.runtime().warmup_iterations() rounds of WarmupShapes through
// Prepare and Run (the last request of each batch asks for per-head
// attention, so that path is warm too). Returns the time taken; an error
// when a forward fails (the version must not serve then).
absl::StatusOr<absl::Duration> WarmUp(runtime::ModelRuntime& runtime,
                                      const text::WordPieceTokenizer& tokenizer,
                                      const fusion::v1::ModelConfig& config);

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_WARMUP_H_
