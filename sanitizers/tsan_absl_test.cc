// sanitizers/tsan_absl.cc under ThreadSanitizer: data handed between
// threads through each wrapped Abseil primitive is not reported (built
// without the wrappers, TSan reports races here), and tsan_detects_race
// shows that a real race still is.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 500;

TEST(TsanAbslTest, LockAndReaderLockOrderAccesses) {
  absl::Mutex mu;
  int value = 0;  // guarded by mu
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        {
          absl::MutexLock lock(&mu);
          ++value;
        }
        absl::ReaderMutexLock lock(&mu);
        EXPECT_GT(value, 0);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(value, kThreads * kRounds);
}

TEST(TsanAbslTest, TryLockOrdersAccessesWhenItSucceeds) {
  absl::Mutex mu;
  int value = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kRounds;) {
        if (!mu.TryLock()) continue;
        ++value;
        ++done;
        mu.Unlock();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(value, kThreads * kRounds);
}

TEST(TsanAbslTest, AwaitSeesWhatTheWriterWroteBeforeUnlocking) {
  absl::Mutex mu;
  bool ready = false;
  int payload = 0;  // written before ready, under mu
  std::thread writer([&] {
    absl::MutexLock lock(&mu);
    payload = 42;
    ready = true;
  });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&ready));
    EXPECT_EQ(payload, 42);
  }
  writer.join();
  bool done = false;
  std::thread late([&] {
    absl::MutexLock lock(&mu);
    payload = 7;
    done = true;
  });
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30)));
    EXPECT_EQ(payload, 7);
  }
  late.join();
}

TEST(TsanAbslTest, NotificationHandsOverWhatWasWrittenBeforeNotify) {
  for (int i = 0; i < kRounds; ++i) {
    auto* n = new absl::Notification();  // reused addresses: destroy works
    int payload = 0;
    std::thread notifier([&] {
      payload = i + 1;
      n->Notify();
    });
    if (i % 3 == 0) {
      n->WaitForNotification();
    } else if (i % 3 == 1) {
      EXPECT_TRUE(n->WaitForNotificationWithTimeout(absl::Seconds(30)));
    } else {
      while (!n->HasBeenNotified()) std::this_thread::yield();
    }
    EXPECT_EQ(payload, i + 1);
    notifier.join();
    delete n;
  }
}

}  // namespace
