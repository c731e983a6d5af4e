// The batcher's source of time, injectable so that tests control it.
//
// The scheduler reads Now() and sleeps through WaitUntil(), never through
// absl::Now() or a condition variable's own timeout, so a FakeClock decides
// when a queued task becomes due, expires or ages.
#ifndef FUSION_SERVER_BATCHING_CLOCK_H_
#define FUSION_SERVER_BATCHING_CLOCK_H_

#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace fusion::batching {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() const = 0;

  // Blocks on `cv` until it is notified, a spurious wake-up, or Now() reaches
  // `deadline` (InfiniteFuture: no timeout). `lock` holds the mutex that
  // guards the waiter's state, on entry and on return. Callers re-check their
  // condition in a loop, as with any condition variable.
  virtual void WaitUntil(std::condition_variable& cv,
                         std::unique_lock<std::mutex>& lock,
                         absl::Time deadline) = 0;

  // The process-wide wall clock (absl::Now(), steady waits). Never null.
  static Clock* Real();
};

// Time that moves only when the test says. Waiters in WaitUntil() wake when
// Advance()/SetTime() reaches their deadline, so a threaded scheduler can be
// driven deterministically too.
//
// Advance()/SetTime() must not run concurrently with destroying a scheduler
// (or any other waiter) that uses this clock, and the clock must outlive them.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}

  absl::Time Now() const override;
  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) override;

  void Advance(absl::Duration d);
  // Time never goes backwards: ignored if t < Now().
  void SetTime(absl::Time t);

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
  };
  void WakeWaiters();

  mutable std::mutex mu_;  // leaf lock: nothing else is locked while held
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_CLOCK_H_
