// Rescans the model repository every `interval` (ModelRegistry::Sync) on a
// thread of its own, so new versions go live without a restart. Stops, and
// joins, on destruction; a rescan in progress finishes first.
#ifndef FUSION_SERVER_SERVING_REPOSITORY_POLLER_H_
#define FUSION_SERVER_SERVING_REPOSITORY_POLLER_H_

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/serving/model_registry.h"

namespace fusion::serving {

class RepositoryPoller {
 public:
  // `registry` must outlive the poller; `interval` > 0.
  RepositoryPoller(ModelRegistry* registry, absl::Duration interval);
  ~RepositoryPoller();

  RepositoryPoller(const RepositoryPoller&) = delete;
  RepositoryPoller& operator=(const RepositoryPoller&) = delete;

 private:
  void Run();

  ModelRegistry* const registry_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_REPOSITORY_POLLER_H_
