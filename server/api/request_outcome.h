// A request's outcome, recorded once by whichever API answered it (native or
// v2): in the model's Prometheus observer and its ModelStatistics counters.
#ifndef FUSION_SERVER_API_REQUEST_OUTCOME_H_
#define FUSION_SERVER_API_REQUEST_OUTCOME_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/serving/scoring_task.h"
#include "server/serving/servable.h"

namespace fusion::api {

// `total`: arrival to answer. `slowest`: the timing of its slowest row.
inline void RecordSuccess(serving::Servable& servable, absl::Duration total,
                          const serving::TaskTiming& slowest, int rows = 1) {
  const absl::Duration queue = absl::Microseconds(slowest.queue_us);
  const absl::Duration compute = absl::Microseconds(slowest.compute_us);
  const absl::Duration collation = absl::Microseconds(slowest.collation_us);
  servable.observer().OnRequestFinished(absl::StatusCode::kOk, total, queue,
                                        compute);
  servable.stats().RecordSuccess(total, queue, collation, compute - collation,
                                 rows);
}

// A request that reached the model and failed: invalid, refused by the
// queue, expired, cancelled, or a failed forward.
inline void RecordFailure(serving::Servable& servable, absl::StatusCode code,
                          absl::Duration total) {
  servable.observer().OnRequestFinished(code, total, absl::ZeroDuration(),
                                        absl::ZeroDuration());
  servable.stats().RecordFailure(total);
}

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_REQUEST_OUTCOME_H_
