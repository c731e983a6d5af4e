#include "server/batching/batch_queue.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"

namespace fusion::batching {
namespace {

BatchQueueOptions Options(int max_batch, absl::Duration delay, int max_queue,
                          int executors) {
  BatchQueueOptions options;
  options.max_batch_size = max_batch;
  options.max_queue_delay = delay;
  options.max_queue_size = max_queue;
  options.num_executors = executors;
  return options;
}

const absl::Duration kNoDelay = absl::ZeroDuration();

struct CountingTask {
  explicit CountingTask(std::atomic<int>* completed) : completed(completed) {}
  std::atomic<int>* completed;
};

TEST(BatchQueueTest, RejectsBadOptions) {
  auto noop = [](BatchQueue<CountingTask>::Batch) {};
  using Queue = BatchQueue<CountingTask>;
  EXPECT_FALSE(Queue::Create(Options(0, kNoDelay, 1, 1), noop).ok());
  EXPECT_FALSE(Queue::Create(Options(1, -absl::Microseconds(1), 1, 1), noop).ok());
  EXPECT_FALSE(Queue::Create(Options(1, kNoDelay, 0, 1), noop).ok());
  EXPECT_FALSE(Queue::Create(Options(1, kNoDelay, 1, 0), noop).ok());
  EXPECT_FALSE(Queue::Create(Options(1, kNoDelay, 1, 1), nullptr).ok());
}

TEST(BatchQueueTest, BatchesWhatQueuedWhileTheExecutorWasBusy) {
  absl::Notification first_started, release_first;
  std::vector<size_t> sizes;
  std::atomic<int> completed{0};
  auto queue = BatchQueue<CountingTask>::Create(
      Options(/*max_batch=*/4, kNoDelay, /*max_queue=*/100, /*executors=*/1),
      [&](BatchQueue<CountingTask>::Batch batch) {
        sizes.push_back(batch.size());
        if (!first_started.HasBeenNotified()) {
          first_started.Notify();
          release_first.WaitForNotification();
        }
        completed += batch.size();
      });
  ASSERT_TRUE(queue.ok());
  auto task = std::make_unique<CountingTask>(&completed);
  ASSERT_TRUE((*queue)->Enqueue(task).ok());
  EXPECT_EQ(task, nullptr);  // ownership moved on success
  first_started.WaitForNotification();
  for (int i = 0; i < 6; ++i) {
    auto t = std::make_unique<CountingTask>(&completed);
    ASSERT_TRUE((*queue)->Enqueue(t).ok());
  }
  EXPECT_EQ((*queue)->depth(), 6);
  release_first.Notify();
  (*queue)->Shutdown();
  EXPECT_EQ(completed, 7);
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 4, 2}));
}

TEST(BatchQueueTest, FullQueueRejectsAtOnceAndKeepsTheTask) {
  absl::Notification started, release;
  auto queue = BatchQueue<CountingTask>::Create(
      Options(1, kNoDelay, /*max_queue=*/2, 1),
      [&](BatchQueue<CountingTask>::Batch) {
        if (!started.HasBeenNotified()) started.Notify();
        release.WaitForNotification();
      });
  ASSERT_TRUE(queue.ok());
  std::atomic<int> unused{0};
  auto running = std::make_unique<CountingTask>(&unused);
  ASSERT_TRUE((*queue)->Enqueue(running).ok());
  started.WaitForNotification();
  for (int i = 0; i < 2; ++i) {
    auto t = std::make_unique<CountingTask>(&unused);
    ASSERT_TRUE((*queue)->Enqueue(t).ok());
  }
  auto rejected = std::make_unique<CountingTask>(&unused);
  absl::Status status = (*queue)->Enqueue(rejected);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(rejected, nullptr);  // the caller still owns it
  release.Notify();
}

TEST(BatchQueueTest, ShutdownDrainsThenRejects) {
  std::atomic<int> completed{0};
  auto queue = BatchQueue<CountingTask>::Create(
      Options(8, kNoDelay, 1000, 2), [&](BatchQueue<CountingTask>::Batch batch) {
        completed += batch.size();
      });
  ASSERT_TRUE(queue.ok());
  for (int i = 0; i < 500; ++i) {
    auto t = std::make_unique<CountingTask>(&completed);
    ASSERT_TRUE((*queue)->Enqueue(t).ok());
  }
  (*queue)->Shutdown();
  EXPECT_EQ(completed, 500);
  auto late = std::make_unique<CountingTask>(&completed);
  EXPECT_EQ((*queue)->Enqueue(late).code(), absl::StatusCode::kUnavailable);
}

TEST(BatchQueueTest, WaitsForCompanyUpToTheDelay) {
  std::vector<size_t> sizes;
  absl::Notification executed;
  auto queue = BatchQueue<CountingTask>::Create(
      Options(3, absl::Milliseconds(200), 100, 1),
      [&](BatchQueue<CountingTask>::Batch batch) {
        sizes.push_back(batch.size());
        executed.Notify();
      });
  ASSERT_TRUE(queue.ok());
  std::atomic<int> unused{0};
  const absl::Time start = absl::Now();
  auto task = std::make_unique<CountingTask>(&unused);
  ASSERT_TRUE((*queue)->Enqueue(task).ok());
  executed.WaitForNotification();
  // A lone task waits for the delay, not longer than needed.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  EXPECT_EQ(sizes, std::vector<size_t>{1});
}

TEST(BatchQueueTest, FullBatchGoesWithoutWaitingForTheDelay) {
  absl::Notification executed;
  std::vector<size_t> sizes;
  auto queue = BatchQueue<CountingTask>::Create(
      Options(4, absl::Seconds(30), 100, 1),
      [&](BatchQueue<CountingTask>::Batch batch) {
        sizes.push_back(batch.size());
        executed.Notify();
      });
  ASSERT_TRUE(queue.ok());
  std::atomic<int> unused{0};
  const absl::Time start = absl::Now();
  for (int i = 0; i < 4; ++i) {
    auto task = std::make_unique<CountingTask>(&unused);
    ASSERT_TRUE((*queue)->Enqueue(task).ok());
  }
  executed.WaitForNotification();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(sizes, std::vector<size_t>{4});
}

TEST(BatchQueueTest, ManySubmittersEveryTaskExecutedExactlyOnce) {
  constexpr int kThreads = 8, kPerThread = 2000, kMaxBatch = 16;
  std::vector<std::atomic<int>> seen(kThreads * kPerThread);
  struct IdTask {
    int id;
  };
  std::atomic<int> max_batch_seen{0};
  auto queue = BatchQueue<IdTask>::Create(
      Options(kMaxBatch, absl::Microseconds(200), 1 << 20, 3), [&](BatchQueue<IdTask>::Batch batch) {
        int size = static_cast<int>(batch.size());
        int prev = max_batch_seen.load();
        while (size > prev && !max_batch_seen.compare_exchange_weak(prev, size)) {
        }
        for (auto& task : batch) seen[task->id]++;
      });
  ASSERT_TRUE(queue.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto task = std::make_unique<IdTask>(IdTask{t * kPerThread + i});
        ASSERT_TRUE((*queue)->Enqueue(task).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  (*queue)->Shutdown();
  for (auto& count : seen) ASSERT_EQ(count.load(), 1);
  EXPECT_LE(max_batch_seen.load(), kMaxBatch);
}

}  // namespace
}  // namespace fusion::batching
