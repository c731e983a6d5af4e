#include "server/batching/clock.h"

#include <algorithm>
#include <chrono>

#include "absl/time/clock.h"

namespace fusion::batching {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }

  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) override {
    if (deadline == absl::InfiniteFuture()) {
      cv.wait(lock);
      return;
    }
    // wait_for measures on the steady clock, so a wall-clock step cannot
    // stretch the sleep; a far deadline is capped (the caller loops anyway).
    const absl::Duration left =
        std::min(deadline - absl::Now(), absl::Hours(1));
    if (left <= absl::ZeroDuration()) return;
    cv.wait_for(lock, absl::ToChronoNanoseconds(left));
  }
};

}  // namespace

Clock* Clock::Real() {
  static Clock* const clock = new RealClock();
  return clock;
}

absl::Time FakeClock::Now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

void FakeClock::WaitUntil(std::condition_variable& cv,
                          std::unique_lock<std::mutex>& lock,
                          absl::Time deadline) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (now_ >= deadline) return;
    // Registered under the caller's lock, which cv.wait() releases only once
    // it waits: WakeWaiters() takes that lock before notifying, so a wake-up
    // between this check and the wait cannot be lost.
    waiters_.push_back({&cv, lock.mutex()});
  }
  cv.wait(lock);
  std::lock_guard<std::mutex> guard(mu_);
  auto it = std::find_if(
      waiters_.begin(), waiters_.end(),
      [&](const Waiter& w) { return w.cv == &cv && w.mu == lock.mutex(); });
  if (it != waiters_.end()) waiters_.erase(it);
}

void FakeClock::Advance(absl::Duration d) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    now_ += d;
  }
  WakeWaiters();
}

void FakeClock::SetTime(absl::Time t) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    now_ = std::max(now_, t);
  }
  WakeWaiters();
}

void FakeClock::WakeWaiters() {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> guard(mu_);
    waiters = waiters_;
  }
  // Waiters hold their own mutex when they call Now(), which takes mu_: so
  // mu_ must be released before taking theirs.
  for (const Waiter& w : waiters) {
    std::lock_guard<std::mutex> guard(*w.mu);
    w.cv->notify_all();
  }
}

}  // namespace fusion::batching
