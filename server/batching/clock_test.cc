#include "server/batching/clock.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"

namespace fusion::batching {
namespace {

TEST(FakeClockTest, MovesOnlyForward) {
  FakeClock clock(absl::FromUnixSeconds(10));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(10));
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(12));
  clock.SetTime(absl::FromUnixSeconds(11));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(12));
}

TEST(FakeClockTest, WaitUntilAPastDeadlineReturnsAtOnce) {
  FakeClock clock(absl::FromUnixSeconds(10));
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  clock.WaitUntil(cv, lock, absl::FromUnixSeconds(10));
  EXPECT_TRUE(lock.owns_lock());
}

TEST(FakeClockTest, AdvanceWakesAWaiterAtItsDeadline) {
  FakeClock clock(absl::FromUnixSeconds(10));
  const absl::Time deadline = absl::FromUnixSeconds(15);
  std::mutex mu;
  std::condition_variable cv;
  bool woke = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (clock.Now() < deadline) clock.WaitUntil(cv, lock, deadline);
    woke = true;
  });
  clock.Advance(absl::Seconds(2));
  clock.Advance(absl::Seconds(3));  // no lost wake-up, whatever the timing
  waiter.join();
  EXPECT_TRUE(woke);
}

TEST(RealClockTest, WaitsAboutUntilTheDeadline) {
  Clock* clock = Clock::Real();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  const absl::Time deadline = clock->Now() + absl::Milliseconds(20);
  while (clock->Now() < deadline) clock->WaitUntil(cv, lock, deadline);
  EXPECT_GE(absl::Now(), deadline);
}

}  // namespace
}  // namespace fusion::batching
