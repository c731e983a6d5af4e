// The scheduler's rules, driven deterministically: a FakeClock, thread-free
// mode (batches run inline in DispatchOne) and a recording executor. The last
// tests use real threads.
#include "server/batching/batch_scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "server/batching/padding.h"
#include "server/batching/test_task.h"

namespace fusion::batching {
namespace {

using testing::CompletionLog;
using testing::RecordingExecutor;
using testing::TestTask;
using Scheduler = BatchScheduler<TestTask>;
using Ids = std::vector<int>;

const absl::Time kStart = absl::FromUnixSeconds(1000);

BatchSchedulerOptions Opts(int max_batch, absl::Duration delay) {
  BatchSchedulerOptions o;
  o.max_batch_size = max_batch;
  o.max_queue_delay = delay;
  return o;
}

class SchedulerTest : public ::testing::Test {
 protected:
  // Thread-free scheduler on the fake clock, recording into executor_.
  void Make(const BatchSchedulerOptions& options) {
    auto s = Scheduler::CreateThreadFree(
        options, [this](Scheduler::Batch&& b) { executor_(b); }, &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    scheduler_ = std::move(*s);
  }

  // Enqueues task `id`, expecting OK.
  void Add(int id, int length = 10, int priority = 0,
           absl::Time deadline = absl::InfiniteFuture(),
           std::shared_ptr<std::atomic<bool>> cancel = nullptr) {
    auto task = std::make_unique<TestTask>(id, length, priority, &log_,
                                           deadline, std::move(cancel));
    ASSERT_TRUE(scheduler_->Enqueue(task).ok()) << "task " << id;
    ASSERT_EQ(task, nullptr);  // ownership moved on success
  }

  std::vector<Ids> BatchIds() const {
    std::vector<Ids> ids;
    for (const auto& b : executor_.batches()) ids.push_back(b.ids);
    return ids;
  }

  void ExpectCompletedOnce(int id, absl::StatusCode code) {
    EXPECT_EQ(log_.times(id), 1) << "task " << id;
    EXPECT_EQ(log_.code(id), code) << "task " << id;
  }

  FakeClock clock_{kStart};
  CompletionLog log_{10000};
  RecordingExecutor executor_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, FullBatchLeavesAtOnce) {
  Make(Opts(4, absl::Milliseconds(10)));
  for (int i = 0; i < 6; ++i) Add(i);
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_FALSE(scheduler_->DispatchOne());  // 2 left, not due yet
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1, 2, 3}}));
  EXPECT_EQ(scheduler_->depth(), 2);
  for (int i = 0; i < 4; ++i) ExpectCompletedOnce(i, absl::StatusCode::kOk);
}

TEST_F(SchedulerTest, PartialBatchLeavesWhenItsOldestTaskHasWaitedTheDelay) {
  Make(Opts(4, absl::Milliseconds(10)));
  Add(0);
  clock_.Advance(absl::Milliseconds(4));
  Add(1);
  clock_.Advance(absl::Milliseconds(5) + absl::Microseconds(999));
  EXPECT_FALSE(scheduler_->DispatchOne());  // oldest waited 9.999 ms
  clock_.Advance(absl::Microseconds(1));
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1}}));
  EXPECT_EQ(scheduler_->depth(), 0);
}

TEST_F(SchedulerTest, ZeroDelayDispatchesWhateverIsQueued) {
  Make(Opts(4, absl::ZeroDuration()));
  Add(0);
  EXPECT_TRUE(scheduler_->DispatchOne());
  for (int i = 1; i <= 6; ++i) Add(i);  // queued while the executor was busy
  EXPECT_EQ(scheduler_->RunUntilIdle(), 2);
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0}, {1, 2, 3, 4}, {5, 6}}));
}

TEST_F(SchedulerTest, PreferredSizesLeaveWithoutWaiting) {
  BatchSchedulerOptions o = Opts(16, absl::Milliseconds(10));
  o.preferred_batch_sizes = {8, 4};
  Make(o);
  for (int i = 0; i < 3; ++i) Add(i);
  EXPECT_FALSE(scheduler_->DispatchOne());  // 3 < smallest preferred size
  Add(3);
  EXPECT_TRUE(scheduler_->DispatchOne());   // 4 is preferred
  for (int i = 4; i < 15; ++i) Add(i);      // 11 queued
  EXPECT_TRUE(scheduler_->DispatchOne());   // the largest preferred: 8
  EXPECT_FALSE(scheduler_->DispatchOne());  // 3 left: wait for the delay
  clock_.Advance(absl::Milliseconds(10));
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(executor_.sizes(), (std::vector<size_t>{4, 8, 3}));
}

TEST_F(SchedulerTest, FullBatchBeatsPreferredSizes) {
  BatchSchedulerOptions o = Opts(6, absl::Milliseconds(10));
  o.preferred_batch_sizes = {4};
  Make(o);
  for (int i = 0; i < 7; ++i) Add(i);
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(executor_.sizes(), (std::vector<size_t>{6}));
}

TEST_F(SchedulerTest, BatchesGroupTasksOfSimilarLength) {
  Make(Opts(3, absl::Milliseconds(10)));  // edges 16/32/64/128
  // Interleaved lengths: 8, 100, 12, 110, 16, 120.
  const int lengths[] = {8, 100, 12, 110, 16, 120};
  for (int i = 0; i < 6; ++i) Add(i, lengths[i]);
  EXPECT_EQ(scheduler_->RunUntilIdle(), 2);  // both buckets are full
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 2, 4}, {1, 3, 5}}));
}

TEST_F(SchedulerTest, LateBucketMergesNearestBucketsShorterFirst) {
  BatchSchedulerOptions o = Opts(5, absl::Milliseconds(10));
  o.merge_cost_tokens = 1000;  // a forward's fixed cost dwarfs any padding
  Make(o);
  Add(0, 20);  // bucket 1 (17..32), the late one
  Add(1, 30);
  clock_.Advance(absl::Milliseconds(1));
  Add(2, 40);   // bucket 2
  Add(3, 10);   // bucket 0
  Add(4, 200);  // bucket 4
  Add(5, 50);   // bucket 2
  Add(6, 5);    // bucket 0

  // Only bucket 1 is late.
  clock_.Advance(absl::Milliseconds(9));
  EXPECT_TRUE(scheduler_->DispatchOne());
  // Its own two, then bucket 0 (shorter, distance 1), then bucket 2.
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1, 3, 6, 2}}));
  EXPECT_EQ(scheduler_->depth(), 2);  // 50 and 200 wait for their own delay
}

TEST_F(SchedulerTest, BucketsCutPaddingOfMixedLengths) {
  // Steady load with random lengths: full batches, bucketed vs one bucket.
  auto efficiency = [this](std::vector<int> edges) {
    CompletionLog log(4096);
    PaddingStats total;
    BatchSchedulerOptions o = Opts(16, absl::Milliseconds(2));
    o.length_bucket_edges = std::move(edges);
    o.max_queue_size = 4096;
    auto s = Scheduler::CreateThreadFree(
        o,
        [&](Scheduler::Batch&& batch) {
          total += MeasurePadding(batch);
          for (auto& t : batch) t->Succeed();
        },
        &clock_);
    EXPECT_TRUE(s.ok());
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> length(4, 192);
    for (int i = 0; i < 2048; ++i) {
      auto task = std::make_unique<TestTask>(i, length(rng), 0, &log);
      EXPECT_TRUE((*s)->Enqueue(task).ok());
      (*s)->DispatchOne();
      if (i % 8 == 7) clock_.Advance(absl::Microseconds(100));
    }
    (*s)->Shutdown();
    return total.efficiency();
  };
  const double bucketed = efficiency({16, 32, 64, 128});
  const double unbucketed = efficiency({});
  std::printf("padding efficiency: bucketed %.3f, one bucket %.3f\n", bucketed,
              unbucketed);
  EXPECT_GT(bucketed, 0.75);
  EXPECT_GT(bucketed, unbucketed + 0.2);
}

TEST_F(SchedulerTest, HigherPriorityFirstWithinABucket) {
  Make(Opts(2, absl::Milliseconds(10)));
  Add(0, 10, /*priority=*/1);
  Add(1, 10, 1);
  EXPECT_TRUE(scheduler_->DispatchOne());  // full
  Add(2, 10, 1);
  Add(3, 10, 0);
  Add(4, 10, 1);
  EXPECT_TRUE(scheduler_->DispatchOne());  // full: the priority-0 task first
  clock_.Advance(absl::Milliseconds(10));
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1}, {3, 2}, {4}}));
}

TEST_F(SchedulerTest, HigherPriorityBucketServedFirst) {
  Make(Opts(1, absl::Milliseconds(10)));
  Add(0, 10, /*priority=*/1);              // bucket 0, older
  Add(1, 100, /*priority=*/0);             // bucket 3
  clock_.Advance(absl::Milliseconds(10));  // both late
  EXPECT_EQ(scheduler_->RunUntilIdle(), 2);
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{1}, {0}}));
}

TEST_F(SchedulerTest, AgeingStopsStarvation) {
  BatchSchedulerOptions o = Opts(1, absl::ZeroDuration());
  o.starvation_age = absl::Milliseconds(50);
  Make(o);
  Add(0, 10, /*priority=*/1);
  // A priority-0 task every millisecond and one batch per millisecond: the
  // low task loses every time until it has waited 50 ms.
  int next = 1;
  int served_low_at_ms = -1;
  for (int ms = 0; ms < 60 && served_low_at_ms < 0; ++ms) {
    Add(next++, 10, 0);
    ASSERT_TRUE(scheduler_->DispatchOne());
    if (BatchIds().back() == Ids{0}) served_low_at_ms = ms;
    clock_.Advance(absl::Milliseconds(1));
  }
  EXPECT_EQ(served_low_at_ms, 50);
}

TEST_F(SchedulerTest, WithoutAgeingALowPriorityTaskStarves) {
  BatchSchedulerOptions o = Opts(1, absl::ZeroDuration());
  o.starvation_age = absl::InfiniteDuration();
  Make(o);
  Add(0, 10, 1);
  for (int ms = 1; ms <= 200; ++ms) {
    Add(ms, 10, 0);
    ASSERT_TRUE(scheduler_->DispatchOne());
    clock_.Advance(absl::Milliseconds(1));
  }
  EXPECT_EQ(log_.times(0), 0);
  EXPECT_EQ(scheduler_->depth(1), 1);
}

TEST_F(SchedulerTest, FullQueueRejectsAndLeavesTheTaskWithTheCaller) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.max_queue_size = 3;
  Make(o);
  for (int i = 0; i < 3; ++i) Add(i, 10, i % 2);
  auto task = std::make_unique<TestTask>(3, 10, 0, &log_);
  const absl::Status status = scheduler_->Enqueue(task);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(log_.times(3), 0);
  EXPECT_EQ(scheduler_->depth(), 3);
  EXPECT_EQ(scheduler_->depth(0), 2);
  EXPECT_EQ(scheduler_->depth(1), 1);
  EXPECT_EQ(scheduler_->counters().rejected_full, 1);
  task->Fail(status);  // the caller answers it
}

TEST_F(SchedulerTest, CheckRoomRefusesAsEnqueueWouldOnlyWhenFull) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.max_queue_size = 2;
  Make(o);
  EXPECT_TRUE(scheduler_->CheckRoom().ok());
  Add(0, 10, 0);
  EXPECT_TRUE(scheduler_->CheckRoom().ok());  // one slot left
  Add(1, 10, 0);
  const absl::Status full = scheduler_->CheckRoom();
  auto task = std::make_unique<TestTask>(2, 10, 0, &log_);
  EXPECT_EQ(full, scheduler_->Enqueue(task));  // the same answer
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_EQ(scheduler_->counters().rejected_full, 2);  // each refusal
  task->Fail(full);
  clock_.Advance(absl::Milliseconds(10));  // the two are due
  ASSERT_TRUE(scheduler_->DispatchOne());  // frees both slots
  EXPECT_TRUE(scheduler_->CheckRoom().ok());
  scheduler_->Shutdown();
  EXPECT_TRUE(absl::IsUnavailable(scheduler_->CheckRoom()));
}

TEST_F(SchedulerTest, EachBucketIsFullAtItsOwnLargestBatch) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.bucket_max_batch_sizes = {8, 8, 4, 2, 2};  // edges 16, 32, 64, 128
  Make(o);
  for (int i = 0; i < 5; ++i) Add(i, 50);  // the <=64 bucket: 4 at most
  ASSERT_TRUE(scheduler_->DispatchOne());  // full now, no waiting
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1, 2, 3}}));
  EXPECT_FALSE(scheduler_->DispatchOne());  // one left: not full
  clock_.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(BatchIds().back(), Ids{4});
}

TEST_F(SchedulerTest, AMergedBatchStaysWithinEveryMergedBucketsLargestBatch) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.bucket_max_batch_sizes = {8, 8, 4, 2, 2};
  o.merge_cost_tokens = 1e9;  // merging always pays
  Make(o);
  Add(0, 10);                                // <=16: up to 8
  for (int i = 1; i <= 3; ++i) Add(i, 100);  // <=128: up to 2
  clock_.Advance(absl::Milliseconds(10));    // late: task 0's bucket leads
  ASSERT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1}}));
}

TEST_F(SchedulerTest, QueueIsFullWhenItsWorkPassesMaxQueueWait) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.merge_cost_tokens = 0;  // work = queued positions x seconds each
  o.max_queue_wait = absl::Milliseconds(100);
  Make(o);
  // No batch computed yet: no estimate, so no bound but max_queue_size.
  for (int i = 0; i < 200; ++i) Add(i, 100);
  EXPECT_EQ(scheduler_->EstimatedQueuedWork(), absl::ZeroDuration());
  while (scheduler_->DispatchOne()) clock_.Advance(absl::Milliseconds(10));
  clock_.Advance(absl::Milliseconds(10));
  scheduler_->RunUntilIdle();
  ASSERT_EQ(scheduler_->depth(), 0);

  scheduler_->RecordBatchCost(1000, absl::Milliseconds(10));  // 10 us each
  for (int i = 200; i < 300; ++i) Add(i, 100);  // 10,000 positions: 100 ms
  EXPECT_EQ(scheduler_->EstimatedQueuedWork(), absl::Milliseconds(100));
  Add(300, 100);  // at the bound, not past it: admitted
  const int64_t rejected = scheduler_->counters().rejected_full;
  auto task = std::make_unique<TestTask>(301, 1, 0, &log_);
  const absl::Status status = scheduler_->Enqueue(task);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_EQ(status.message(),
            "queue full (about 101 ms of work waiting; max_queue_wait 100 ms)");
  EXPECT_EQ(scheduler_->CheckRoom(), status);
  EXPECT_EQ(scheduler_->counters().rejected_full, rejected + 2);
  task->Fail(status);

  // The estimate follows slower batches (a moving average): 10 + 0.1 x 20.
  scheduler_->RecordBatchCost(1000, absl::Milliseconds(30));
  EXPECT_EQ(scheduler_->EstimatedQueuedWork(), absl::Microseconds(121200));
}

TEST_F(SchedulerTest,
       WorkIsSharedOverTheExecutorsAndCountsEachBatchsFixedCost) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.merge_cost_tokens = 50;
  o.num_executors = 2;
  Make(o);
  scheduler_->RecordBatchCost(950, absl::Milliseconds(10));  // 10 us each
  for (int i = 0; i < 9; ++i) Add(i, 100);  // 900 + 2 batches x 50
  EXPECT_EQ(scheduler_->EstimatedQueuedWork(), absl::Milliseconds(5));
}

TEST_F(SchedulerTest, NoQueueWaitBoundWhenInfinite) {
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(10));
  o.max_queue_wait = absl::InfiniteDuration();
  Make(o);
  scheduler_->RecordBatchCost(1, absl::Seconds(1));
  for (int i = 0; i < 100; ++i) Add(i, 100);
  EXPECT_TRUE(scheduler_->CheckRoom().ok());
}

TEST_F(SchedulerTest, RejectsOutOfRangePriorityAndBadLength) {
  Make(Opts(8, absl::Milliseconds(10)));
  auto high = std::make_unique<TestTask>(0, 10, /*priority=*/2, &log_);
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Enqueue(high)));
  auto negative = std::make_unique<TestTask>(1, 10, -1, &log_);
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Enqueue(negative)));
  auto length = std::make_unique<TestTask>(2, -5, 0, &log_);
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Enqueue(length)));
  std::unique_ptr<TestTask> null;
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Enqueue(null)));
  EXPECT_NE(high, nullptr);
  EXPECT_NE(negative, nullptr);
  EXPECT_NE(length, nullptr);
  high->Succeed();
  negative->Succeed();
  length->Succeed();
}

TEST_F(SchedulerTest, ExpiredTaskFailsBeforeCompute) {
  Make(Opts(8, absl::Milliseconds(10)));
  Add(0, 10, 0, kStart + absl::Milliseconds(5));
  Add(1);
  clock_.Advance(absl::Milliseconds(5));    // task 0's deadline
  EXPECT_FALSE(scheduler_->DispatchOne());  // swept, but no batch due yet
  ExpectCompletedOnce(0, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(scheduler_->depth(), 1);
  clock_.Advance(absl::Milliseconds(5));
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{1}}));
  EXPECT_EQ(scheduler_->counters().expired, 1);
}

TEST_F(SchedulerTest, TaskPastItsDeadlineIsRefusedAtEnqueue) {
  Make(Opts(8, absl::Milliseconds(10)));
  auto task = std::make_unique<TestTask>(0, 10, 0, &log_, kStart);
  EXPECT_TRUE(absl::IsDeadlineExceeded(scheduler_->Enqueue(task)));
  ASSERT_NE(task, nullptr);
  task->Succeed();
}

TEST_F(SchedulerTest, CancelledTaskIsDroppedAndFailed) {
  Make(Opts(2, absl::Milliseconds(10)));
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  Add(0, 10, 0, absl::InfiniteFuture(), cancel);
  cancel->store(true);
  Add(1);  // the bucket is "full", but task 0 is dead
  EXPECT_FALSE(scheduler_->DispatchOne());
  ExpectCompletedOnce(0, absl::StatusCode::kCancelled);
  EXPECT_EQ(scheduler_->depth(), 1);
  clock_.Advance(absl::Milliseconds(10));
  EXPECT_TRUE(scheduler_->DispatchOne());
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{1}}));
  EXPECT_EQ(scheduler_->counters().cancelled, 1);
}

TEST_F(SchedulerTest, ThrowingExecutorFailsItsBatchAndTheNextRuns) {
  Make(Opts(2, absl::Milliseconds(10)));
  executor_.ThrowNext(1);
  Add(0);
  Add(1);
  EXPECT_TRUE(scheduler_->DispatchOne());
  ExpectCompletedOnce(0, absl::StatusCode::kInternal);
  ExpectCompletedOnce(1, absl::StatusCode::kInternal);
  Add(2);
  Add(3);
  EXPECT_TRUE(scheduler_->DispatchOne());
  ExpectCompletedOnce(2, absl::StatusCode::kOk);
  ExpectCompletedOnce(3, absl::StatusCode::kOk);
  EXPECT_EQ(scheduler_->counters().executor_exceptions, 1);
}

TEST_F(SchedulerTest, ShutdownDrainsEverythingQueued) {
  Make(Opts(4, absl::Hours(1)));
  for (int i = 0; i < 6; ++i) Add(i, i < 3 ? 10 : 100);
  scheduler_->Shutdown();
  // Lengths 10 and 100 sit in non-adjacent buckets: never batched together.
  EXPECT_EQ(BatchIds(), (std::vector<Ids>{{0, 1, 2}, {3, 4, 5}}));
  for (int i = 0; i < 6; ++i) ExpectCompletedOnce(i, absl::StatusCode::kOk);
  auto late = std::make_unique<TestTask>(6, 10, 0, &log_);
  EXPECT_TRUE(absl::IsUnavailable(scheduler_->Enqueue(late)));
  EXPECT_NE(late, nullptr);
  late->Succeed();
  scheduler_->Shutdown();  // idempotent
}

TEST_F(SchedulerTest, ShutdownWithoutDrainFailsQueuedTasksUnavailable) {
  BatchSchedulerOptions o = Opts(4, absl::Hours(1));
  o.drain_on_shutdown = false;
  Make(o);
  for (int i = 0; i < 3; ++i) Add(i);
  scheduler_->Shutdown();
  EXPECT_TRUE(executor_.batches().empty());
  for (int i = 0; i < 3; ++i) {
    ExpectCompletedOnce(i, absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(scheduler_->counters().failed_at_shutdown, 3);
}

TEST_F(SchedulerTest, DispatchOneIsAThreadFreeModeCall) {
  auto s = Scheduler::Create(
      Opts(4, absl::ZeroDuration()), [](Scheduler::Batch&&) {}, &clock_);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)->DispatchOne());
}

TEST(SchedulerCreateTest, RejectsBadArguments) {
  FakeClock clock;
  auto noop = [](Scheduler::Batch&&) {};
  BatchSchedulerOptions bad;
  bad.max_batch_size = 0;
  EXPECT_TRUE(
      absl::IsInvalidArgument(Scheduler::Create(bad, noop, &clock).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      Scheduler::Create(BatchSchedulerOptions(), nullptr, &clock).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      Scheduler::CreateThreadFree(BatchSchedulerOptions(), noop, nullptr)
          .status()));
}

// ---- Real threads ----

// Waits (really) until `done` holds; fails the test after 10 s.
template <typename Pred>
bool WaitFor(std::mutex& mu, std::condition_variable& cv, Pred done) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_for(lock, std::chrono::seconds(10), done);
}

TEST(ThreadedSchedulerTest, FakeClockDrivesTheExecutorThreads) {
  FakeClock clock(kStart);
  CompletionLog log(10);
  std::mutex mu;
  std::condition_variable cv;
  int batches = 0;
  auto s = Scheduler::Create(
      Opts(8, absl::Milliseconds(10)),
      [&](Scheduler::Batch&& batch) {
        for (auto& t : batch) t->Succeed();
        std::lock_guard<std::mutex> lock(mu);
        ++batches;
        cv.notify_all();
      },
      &clock);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 3; ++i) {
    auto task = std::make_unique<TestTask>(i, 10, 0, &log);
    ASSERT_TRUE((*s)->Enqueue(task).ok());
  }
  // Not due until the fake clock says so, however long this thread takes.
  clock.Advance(absl::Milliseconds(9));
  EXPECT_EQ((*s)->depth(), 3);
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(WaitFor(mu, cv, [&] { return batches == 1; }));
  EXPECT_EQ((*s)->depth(), 0);
  (*s)->Shutdown();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(log.code(i), absl::StatusCode::kOk);
}

TEST(ThreadedSchedulerTest, BatchesWhatQueuedWhileTheExecutorWasBusy) {
  CompletionLog log(10);
  std::mutex mu;
  std::condition_variable cv;
  bool first_started = false, release = false;
  std::vector<size_t> sizes;
  auto s = Scheduler::Create(Opts(4, absl::ZeroDuration()),
                             [&](Scheduler::Batch&& batch) {
                               std::unique_lock<std::mutex> lock(mu);
                               sizes.push_back(batch.size());
                               if (!first_started) {
                                 first_started = true;
                                 cv.notify_all();
                                 cv.wait(lock, [&] { return release; });
                               }
                               for (auto& t : batch) t->Succeed();
                             });
  ASSERT_TRUE(s.ok());
  auto first = std::make_unique<TestTask>(0, 10, 0, &log);
  ASSERT_TRUE((*s)->Enqueue(first).ok());
  ASSERT_TRUE(WaitFor(mu, cv, [&] { return first_started; }));
  for (int i = 1; i <= 6; ++i) {
    auto task = std::make_unique<TestTask>(i, 10, 0, &log);
    ASSERT_TRUE((*s)->Enqueue(task).ok());
  }
  EXPECT_EQ((*s)->depth(), 6);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
    cv.notify_all();
  }
  (*s)->Shutdown();
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 4, 2}));
  for (int i = 0; i <= 6; ++i) EXPECT_EQ(log.times(i), 1);
}

// An executor that blocks on its first batch until released, so that tests
// can hold every executor busy while tasks wait.
class BlockingExecutor {
 public:
  void operator()(Scheduler::Batch& batch) {
    std::unique_lock<std::mutex> lock(mu_);
    ++batches_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    for (auto& t : batch) t->Succeed();
  }
  bool WaitForBatches(int n) {
    return WaitFor(mu_, cv_, [&] { return batches_ >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int batches_ = 0;
  bool released_ = false;
};

TEST(ThreadedSchedulerTest, ALoneTaskRunsAtOnceWithoutTimePassing) {
  FakeClock clock(kStart);  // never advanced: no delay can elapse
  CompletionLog log(1);
  BlockingExecutor executor;
  executor.Release();
  auto s = Scheduler::Create(
      BatchSchedulerOptions{}, [&](Scheduler::Batch&& b) { executor(b); },
      &clock);
  ASSERT_TRUE(s.ok());
  auto task = std::make_unique<TestTask>(0, 10, 0, &log);
  ASSERT_TRUE((*s)->Enqueue(task).ok());
  ASSERT_TRUE(executor.WaitForBatches(1));  // before any Shutdown() drain
  EXPECT_EQ((*s)->depth(), 0);
  (*s)->Shutdown();
  EXPECT_EQ(log.code(0), absl::StatusCode::kOk);
}

// With every executor busy, a waiting task fails at its deadline, not when
// an executor comes back.
TEST(ThreadedSchedulerTest,
     QueuedTaskExpiresAtItsDeadlineWhileExecutorsAreBusy) {
  FakeClock clock(kStart);
  CompletionLog log(2);
  BlockingExecutor executor;
  auto s = Scheduler::Create(
      Opts(8, absl::ZeroDuration()), [&](Scheduler::Batch&& b) { executor(b); },
      &clock);
  ASSERT_TRUE(s.ok());
  auto busy = std::make_unique<TestTask>(0, 10, 0, &log);
  ASSERT_TRUE((*s)->Enqueue(busy).ok());
  ASSERT_TRUE(executor.WaitForBatches(1));
  auto waiting = std::make_unique<TestTask>(1, 10, 0, &log,
                                            kStart + absl::Milliseconds(5));
  ASSERT_TRUE((*s)->Enqueue(waiting).ok());
  clock.Advance(absl::Milliseconds(4));
  EXPECT_EQ((*s)->depth(), 1);
  clock.Advance(absl::Milliseconds(1));
  for (int i = 0; i < 1000 && log.times(1) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(log.code(1), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(log.times(0), 0);  // the executor is still busy
  executor.Release();
  (*s)->Shutdown();
  EXPECT_EQ(log.code(0), absl::StatusCode::kOk);
  EXPECT_EQ(log.times(1), 1);
  EXPECT_EQ((*s)->counters().expired, 1);
}

// While one executor is busy, a task it left behind is taken by another
// when it falls due. (Which sleeper notify_one wakes is up to the library,
// so the race where the other sleeps with no timeout is not forced here.)
TEST(ThreadedSchedulerTest, ATaskLeftBehindIsTakenWhenDueByAnotherExecutor) {
  FakeClock clock(kStart);
  CompletionLog log(3);
  BlockingExecutor executor;
  BatchSchedulerOptions o = Opts(2, absl::Milliseconds(10));
  o.num_executors = 2;
  o.length_bucket_edges = {16};
  auto s = Scheduler::Create(
      o, [&](Scheduler::Batch&& b) { executor(b); }, &clock);
  ASSERT_TRUE(s.ok());
  std::vector<std::unique_ptr<TestTask>> tasks;
  tasks.push_back(std::make_unique<TestTask>(0, 10, 0, &log));
  tasks.push_back(std::make_unique<TestTask>(1, 100, 0, &log));  // 2nd bucket
  tasks.push_back(std::make_unique<TestTask>(2, 10, 0, &log));   // fills 1st
  for (auto& task : tasks) ASSERT_TRUE((*s)->Enqueue(task).ok());
  ASSERT_TRUE(executor.WaitForBatches(1));  // the full batch, now blocked
  EXPECT_EQ((*s)->depth(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  clock.Advance(absl::Milliseconds(10));
  EXPECT_TRUE(executor.WaitForBatches(2));  // task 1, by the other executor
  executor.Release();
  (*s)->Shutdown();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(log.code(i), absl::StatusCode::kOk);
}

TEST(ThreadedSchedulerTest, CancellationIsPolledWhileExecutorsAreBusy) {
  FakeClock clock(kStart);
  CompletionLog log(2);
  BlockingExecutor executor;
  BatchSchedulerOptions o = Opts(8, absl::ZeroDuration());
  o.sweep_interval = absl::Milliseconds(10);
  auto s = Scheduler::Create(
      o, [&](Scheduler::Batch&& b) { executor(b); }, &clock);
  ASSERT_TRUE(s.ok());
  auto busy = std::make_unique<TestTask>(0, 10, 0, &log);
  ASSERT_TRUE((*s)->Enqueue(busy).ok());
  ASSERT_TRUE(executor.WaitForBatches(1));
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto waiting = std::make_unique<TestTask>(1, 10, 0, &log,
                                            absl::InfiniteFuture(), cancel);
  ASSERT_TRUE((*s)->Enqueue(waiting).ok());
  // The reaper's first poll comes at once; cancel after it, so that only a
  // later, periodic poll can find it.
  clock.Advance(absl::Milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(log.times(1), 0);
  cancel->store(true);
  clock.Advance(absl::Milliseconds(10));
  for (int i = 0; i < 1000 && log.times(1) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(log.code(1), absl::StatusCode::kCancelled);
  EXPECT_EQ(log.times(0), 0);
  executor.Release();
  (*s)->Shutdown();
  EXPECT_EQ(log.times(1), 1);
}

TEST(ThreadedSchedulerTest, ThrowingExecutorDoesNotStopTheThread) {
  CompletionLog log(10);
  RecordingExecutor executor;
  executor.ThrowNext(1);
  auto s = Scheduler::Create(Opts(1, absl::ZeroDuration()),
                             [&](Scheduler::Batch&& b) { executor(b); });
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 3; ++i) {
    auto task = std::make_unique<TestTask>(i, 10, 0, &log);
    ASSERT_TRUE((*s)->Enqueue(task).ok());
  }
  (*s)->Shutdown();  // one task per batch: the first throws
  EXPECT_EQ(log.code(0), absl::StatusCode::kInternal);
  EXPECT_EQ(log.code(1), absl::StatusCode::kOk);
  EXPECT_EQ(log.code(2), absl::StatusCode::kOk);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(log.times(i), 1);
  EXPECT_EQ((*s)->counters().executor_exceptions, 1);
}

TEST(ThreadedSchedulerTest, ShutdownDrainsWithSeveralExecutors) {
  CompletionLog log(500);
  RecordingExecutor executor;
  BatchSchedulerOptions o = Opts(8, absl::Milliseconds(50));
  o.num_executors = 3;
  auto s = Scheduler::Create(o, [&](Scheduler::Batch&& b) { executor(b); });
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 500; ++i) {
    auto task = std::make_unique<TestTask>(i, i % 200, i % 2, &log);
    ASSERT_TRUE((*s)->Enqueue(task).ok());
  }
  (*s)->Shutdown();
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(log.times(i), 1);
    EXPECT_EQ(log.code(i), absl::StatusCode::kOk);
  }
  EXPECT_EQ(log.unanswered(), 0);
  auto late = std::make_unique<TestTask>(0, 10, 0, &log);
  EXPECT_TRUE(absl::IsUnavailable((*s)->Enqueue(late)));
  late->Succeed();
}

}  // namespace
}  // namespace fusion::batching
