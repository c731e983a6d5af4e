// Per model version counters behind the Open Inference Protocol's
// ModelStatistics (Triton's semantics): requests of both APIs by outcome
// with their cumulative durations, rows computed, batches run and per batch
// size. Always on, a few relaxed atomic adds per request; a mutex only per
// batch, for the batch-size table. Thread-safe.
#ifndef FUSION_SERVER_SERVING_INFERENCE_STATS_H_
#define FUSION_SERVER_SERVING_INFERENCE_STATS_H_

#include <atomic>
#include <cstdint>
#include <map>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fusion::serving {

struct DurationTotal {
  uint64_t count = 0;
  uint64_t ns = 0;
};

struct BatchTotals {
  DurationTotal compute_input;  // collation
  DurationTotal compute_infer;  // forward
};

struct InferenceStatsSnapshot {
  DurationTotal success, fail, queue, compute_input, compute_infer;
  uint64_t inference_count = 0;        // rows computed
  uint64_t execution_count = 0;        // batches run
  uint64_t last_inference_ms = 0;      // since the epoch; 0: none yet
  std::map<int, BatchTotals> batches;  // by batch size
};

class InferenceStats {
 public:
  // A request (native: one row; v2: `rows` rows) answered OK: its time from
  // arrival to answer, and its slowest row's queue, collation and forward.
  void RecordSuccess(absl::Duration total, absl::Duration queue,
                     absl::Duration compute_input, absl::Duration compute_infer,
                     int rows);
  // A request that failed after reaching the model (any code).
  void RecordFailure(absl::Duration total);
  void RecordBatch(int size, absl::Duration collation, absl::Duration forward);
  InferenceStatsSnapshot Read() const;

 private:
  struct AtomicDuration {
    std::atomic<uint64_t> count{0}, ns{0};
    void Add(absl::Duration d);
    DurationTotal Read() const;
  };
  AtomicDuration success_, fail_, queue_, compute_input_, compute_infer_;
  std::atomic<uint64_t> inference_count_{0}, execution_count_{0};
  std::atomic<uint64_t> last_inference_ms_{0};
  mutable absl::Mutex mu_;
  std::map<int, BatchTotals> batches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_INFERENCE_STATS_H_
