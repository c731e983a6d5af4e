// ForwardStage alone, with std primitives only, so that the ThreadSanitizer
// build (make test-tsan) sees every synchronisation.
#include "server/serving/forward_stage.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fusion::serving {
namespace {

// A gate jobs wait at until the test opens it.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Blocks until `n` jobs are waiting at the gate.
  void AwaitWaiting(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int waiting_ = 0;
  bool open_ = false;
};

TEST(ForwardStageTest, HandBlocksWhileEveryInstanceIsBusy) {
  ForwardStage stage(2);
  Gate gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < 2; ++i) {
    stage.Hand([&] {
      gate.Wait();
      ++ran;
    });
  }
  gate.AwaitWaiting(2);  // both instances are running a job
  auto third =
      std::async(std::launch::async, [&] { stage.Hand([&] { ++ran; }); });
  // A negative check needs a time window: the third hand-off must still be
  // waiting for a free instance.
  EXPECT_EQ(third.wait_for(std::chrono::milliseconds(100)),
            std::future_status::timeout);
  gate.Open();
  third.get();
  stage.Shutdown();
  EXPECT_EQ(ran.load(), 3);
}

TEST(ForwardStageTest, ShutdownRunsEveryHandedJobAndLaterHandsRunInline) {
  ForwardStage stage(1);
  Gate gate;
  std::atomic<int> ran{0};
  stage.Hand([&] {
    gate.Wait();
    ++ran;
  });
  gate.AwaitWaiting(1);
  auto shutdown = std::async(std::launch::async, [&] { stage.Shutdown(); });
  EXPECT_EQ(shutdown.wait_for(std::chrono::milliseconds(50)),
            std::future_status::timeout);  // waits for the running job
  gate.Open();
  shutdown.get();
  EXPECT_EQ(ran.load(), 1);
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  stage.Hand([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, caller);
}

TEST(ForwardStageTest, AThrowingJobDoesNotStopTheInstance) {
  ForwardStage stage(1);
  stage.Hand([] { throw std::runtime_error("bad batch"); });
  std::promise<void> done;
  stage.Hand([&] { done.set_value(); });
  EXPECT_EQ(done.get_future().wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
}

TEST(ForwardStageTest, ManyProducersEveryJobRunsOnceAndNeverMoreThanInstances) {
  constexpr int kInstances = 2, kProducers = 4, kJobsEach = 500;
  ForwardStage stage(kInstances);
  std::atomic<int> running{0}, most{0}, ran{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (int j = 0; j < kJobsEach; ++j) {
        stage.Hand([&] {
          const int now = ++running;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          ++ran;
          --running;
        });
      }
    });
  }
  for (auto& t : producers) t.join();
  stage.Shutdown();
  EXPECT_EQ(ran.load(), kProducers * kJobsEach);
  EXPECT_LE(most.load(), kInstances);
}

}  // namespace
}  // namespace fusion::serving
