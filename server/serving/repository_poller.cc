#include "server/serving/repository_poller.h"

#include <pthread.h>

#include "server/common/log.h"

namespace fusion::serving {

RepositoryPoller::RepositoryPoller(ModelRegistry* registry,
                                   absl::Duration interval)
    : registry_(registry), interval_(interval), thread_([this] { Run(); }) {}

RepositoryPoller::~RepositoryPoller() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void RepositoryPoller::Run() {
  pthread_setname_np(pthread_self(), "repo-poller");
  std::string last_error;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
      if (stop_) return;
    }
    // Failures are logged by the registry as they happen; a failure that
    // stays (a missing repository) is logged once, not every poll.
    absl::Status status = registry_->Sync();
    const std::string error = status.ok() ? "" : status.ToString();
    if (!error.empty() && error != last_error) {
      Log(LogLevel::kWarning, "repository poll: ", error);
    }
    last_error = error;
  }
}

}  // namespace fusion::serving
