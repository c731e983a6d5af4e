// What the serving path reports as it works, so that metrics can be kept
// without the serving code knowing Prometheus. One observer per servable.
// Implementations must be thread-safe and cheap: these run per request.
#ifndef FUSION_SERVER_SERVING_SERVING_OBSERVER_H_
#define FUSION_SERVER_SERVING_SERVING_OBSERVER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace fusion::serving {

struct BatchStats {
  int size = 0;
  int64_t real_tokens = 0;      // tokens of the requests themselves
  int64_t computed_tokens = 0;  // size x the batch's padded length
  absl::Duration compute;       // collation, forward and split
};

class ServingObserver {
 public:
  virtual ~ServingObserver() = default;
  // A request for this servable passed validation... or not: every request
  // routed here is started once and finished once.
  virtual void OnRequestStarted() = 0;
  virtual void OnRequestFinished(absl::StatusCode code, absl::Duration total,
                                 absl::Duration queued,
                                 absl::Duration computed) = 0;
  virtual void OnBatchComputed(const BatchStats& stats) = 0;
  // The model's forward failed on `requests` requests (each alone, or its
  // batch when it could not be split further); they are answered INTERNAL.
  virtual void OnForwardFailed(int /*requests*/) {}
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_SERVING_OBSERVER_H_
