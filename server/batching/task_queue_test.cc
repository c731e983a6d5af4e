// The queue as a data structure, with explicit times and no scheduler.
#include "server/batching/task_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "server/batching/test_task.h"

namespace fusion::batching {
namespace {

using testing::CompletionLog;
using testing::TestTask;
using Queue = TaskQueue<TestTask>;

const absl::Time kT0 = absl::FromUnixSeconds(1000);

class TaskQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<TestTask> Task(int id, int length = 10, int priority = 0,
                                 absl::Time deadline = absl::InfiniteFuture()) {
    return std::make_unique<TestTask>(id, length, priority, &log_, deadline);
  }
  void Push(Queue& q, int id, int length = 10, int priority = 0,
            absl::Time now = kT0) {
    auto task = Task(id, length, priority);
    ASSERT_TRUE(q.Push(task, now).ok());
  }
  static std::vector<int> Ids(const Queue::Batch& batch) {
    std::vector<int> ids;
    for (const auto& t : batch) ids.push_back(t->id());
    return ids;
  }
  // Answers every task handed out, so none is reported unanswered.
  void Finish(Queue::Batch& batch) {
    for (auto& t : batch) t->Succeed();
  }
  void Finish(std::vector<Queue::Dropped>& dropped) {
    for (auto& d : dropped) d.task->Fail(d.status);
  }

  CompletionLog log_{100};
  BatchSchedulerOptions options_;
};

TEST(BucketIndexTest, EdgesAreInclusiveAndTheLastBucketIsOpen) {
  const std::vector<int> edges = {16, 32, 64, 128};
  EXPECT_EQ(BucketIndex(edges, 0), 0);
  EXPECT_EQ(BucketIndex(edges, 16), 0);
  EXPECT_EQ(BucketIndex(edges, 17), 1);
  EXPECT_EQ(BucketIndex(edges, 128), 3);
  EXPECT_EQ(BucketIndex(edges, 129), 4);
  EXPECT_EQ(BucketIndex(edges, 100000), 4);
  EXPECT_EQ(BucketIndex({}, 500), 0);
}

TEST_F(TaskQueueTest, CountsPerPriorityAndBucket) {
  Queue q(options_);
  EXPECT_EQ(q.num_buckets(), 5);
  Push(q, 0, 10, 0);
  Push(q, 1, 200, 1);
  Push(q, 2, 20, 1);
  EXPECT_EQ(q.size(), 3);
  EXPECT_EQ(q.size(0), 1);
  EXPECT_EQ(q.size(1), 2);
  EXPECT_EQ(q.size(7), 0);
  EXPECT_EQ(q.bucket_size(0), 1);
  EXPECT_EQ(q.bucket_size(1), 1);
  EXPECT_EQ(q.bucket_size(4), 1);
  Queue::Batch all = q.TakeAll();
  EXPECT_EQ(all.size(), 3u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(1), 0);
  Finish(all);
}

TEST_F(TaskQueueTest, PushRefusalsLeaveTheTask) {
  options_.max_queue_size = 1;
  Queue q(options_);
  auto expired = Task(0, 10, 0, kT0);
  EXPECT_TRUE(absl::IsDeadlineExceeded(q.Push(expired, kT0)));
  auto bad = Task(1, 10, 5);
  EXPECT_TRUE(absl::IsInvalidArgument(q.Push(bad, kT0)));
  Push(q, 2);
  auto extra = Task(3);
  EXPECT_TRUE(absl::IsResourceExhausted(q.Push(extra, kT0)));
  ASSERT_NE(expired, nullptr);
  ASSERT_NE(bad, nullptr);
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(q.size(), 1);
  expired->Succeed();
  bad->Succeed();
  extra->Succeed();
  Queue::Batch rest = q.TakeAll();
  Finish(rest);
}

TEST_F(TaskQueueTest, NextDueTimeFollowsTheOldestTaskOfEachBucket) {
  options_.max_queue_delay = absl::Milliseconds(10);
  options_.max_batch_size = 3;
  Queue q(options_);
  EXPECT_EQ(q.NextDueTime(), absl::InfiniteFuture());
  Push(q, 0, 100, 0, kT0 + absl::Milliseconds(2));
  Push(q, 1, 10, 0, kT0 + absl::Milliseconds(5));
  EXPECT_EQ(q.NextDueTime(), kT0 + absl::Milliseconds(12));
  Push(q, 2, 10, 0, kT0 + absl::Milliseconds(6));
  Push(q, 3, 10, 0, kT0 + absl::Milliseconds(6));
  EXPECT_EQ(q.NextDueTime(), absl::InfinitePast());  // bucket 0 is full
  Queue::Batch all = q.TakeAll();
  Finish(all);
}

TEST_F(TaskQueueTest, EarliestDeadlineIsNeverLateAndExactAfterRemoveDead) {
  options_.length_bucket_edges = {16};
  Queue q(options_);
  EXPECT_EQ(q.EarliestDeadline(), absl::InfiniteFuture());
  auto later = Task(0, 10, 0, kT0 + absl::Milliseconds(9));
  ASSERT_TRUE(q.Push(later, kT0).ok());
  auto sooner = Task(1, 100, 0, kT0 + absl::Milliseconds(4));
  ASSERT_TRUE(q.Push(sooner, kT0).ok());
  EXPECT_EQ(q.EarliestDeadline(), kT0 + absl::Milliseconds(4));
  // Both leave in batches; with a new task queued, the bound may stay
  // early, never late...
  std::vector<Queue::Dropped> dropped;
  Queue::Batch batch = q.TakeBatch(kT0 + absl::Milliseconds(1), true, dropped);
  Queue::Batch rest = q.TakeBatch(kT0 + absl::Milliseconds(1), true, dropped);
  auto third = Task(2, 10, 0, kT0 + absl::Milliseconds(20));
  ASSERT_TRUE(q.Push(third, kT0).ok());
  EXPECT_LE(q.EarliestDeadline(), kT0 + absl::Milliseconds(20));
  // ...and RemoveDead makes it exact; an empty queue has none.
  q.RemoveDead(kT0 + absl::Milliseconds(1), dropped);
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(q.EarliestDeadline(), kT0 + absl::Milliseconds(20));
  Queue::Batch all = q.TakeAll();
  EXPECT_EQ(q.EarliestDeadline(), absl::InfiniteFuture());
  Finish(batch);
  Finish(rest);
  Finish(all);
}

TEST_F(TaskQueueTest, RemoveDeadTakesOnlyExpiredAndCancelled) {
  Queue q(options_);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto cancelled = std::make_unique<TestTask>(0, 10, 1, &log_,
                                              absl::InfiniteFuture(), cancel);
  ASSERT_TRUE(q.Push(cancelled, kT0).ok());
  auto expiring = Task(1, 50, 0, kT0 + absl::Milliseconds(3));
  ASSERT_TRUE(q.Push(expiring, kT0).ok());
  Push(q, 2, 50, 0);
  std::vector<Queue::Dropped> dropped;
  q.RemoveDead(kT0 + absl::Milliseconds(2), dropped);
  EXPECT_TRUE(dropped.empty());
  cancel->store(true);
  q.RemoveDead(kT0 + absl::Milliseconds(3), dropped);
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_TRUE(absl::IsCancelled(dropped[0].status));
  EXPECT_TRUE(absl::IsDeadlineExceeded(dropped[1].status));
  EXPECT_EQ(q.size(), 1);
  EXPECT_EQ(q.size(1), 0);
  Finish(dropped);
  Queue::Batch rest = q.TakeAll();
  EXPECT_EQ(Ids(rest), std::vector<int>{2});
  Finish(rest);
}

// Default edges 16/32/64/128; every task pushed at kT0, taken 1 ms later
// with max_queue_delay 1 ms, so all buckets are late and the oldest (id 0)
// anchors the batch.
class MergeTest : public TaskQueueTest {
 protected:
  MergeTest() {
    options_.max_batch_size = 8;
    options_.max_queue_delay = absl::Milliseconds(1);
    options_.merge_cost_tokens = 20;
  }
  // Pushes {id, length} in order and returns the ids of the first batch.
  std::vector<int> FirstBatch(const std::vector<std::pair<int, int>>& tasks) {
    Queue q(options_);
    for (auto [id, length] : tasks) Push(q, id, length);
    std::vector<Queue::Dropped> dropped;
    Queue::Batch batch =
        q.TakeBatch(kT0 + absl::Milliseconds(1), false, dropped);
    EXPECT_TRUE(dropped.empty());
    std::vector<int> ids = Ids(batch);
    std::sort(ids.begin(), ids.end());
    Finish(batch);
    Queue::Batch rest = q.TakeAll();
    Finish(rest);
    return ids;
  }
};

TEST_F(MergeTest, ShorterBucketJoinsWhenItsPaddingCostsLessThanAForward) {
  // Four 20s (bucket 1) and one 14 (bucket 0): 1 x (20 - 14) = 6 < 20.
  EXPECT_EQ(FirstBatch({{0, 20}, {1, 20}, {2, 20}, {3, 20}, {4, 14}}),
            (std::vector<int>{0, 1, 2, 3, 4}));
  // Four 14s instead: 4 x 6 = 24 >= 20, two forwards are cheaper.
  EXPECT_EQ(FirstBatch({{0, 20},
                        {1, 20},
                        {2, 20},
                        {3, 20},
                        {4, 14},
                        {5, 14},
                        {6, 14},
                        {7, 14}}),
            (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(MergeTest, LongerBucketJoinsOnlyASmallBatch) {
  // One 20 padded to 33: 1 x 13 < 20, whatever the 33s' count.
  EXPECT_EQ(FirstBatch({{0, 20}, {1, 33}, {2, 33}, {3, 33}}),
            (std::vector<int>{0, 1, 2, 3}));
  // Two 20s padded to 33: 2 x 13 = 26 >= 20.
  EXPECT_EQ(FirstBatch({{0, 20}, {1, 20}, {2, 33}}), (std::vector<int>{0, 1}));
}

TEST_F(MergeTest, NearestBucketFirstAndEachMergeSeesTheGrownBatch) {
  // Anchor one 40 (bucket 2). Bucket 1 first: 1 x (40 - 30) = 10 < 20.
  // Then bucket 3 with the batch at two tasks: 2 x (70 - 40) = 60 >= 20.
  // Then bucket 0: 1 x (40 - 16) = 24 >= 20.
  EXPECT_EQ(FirstBatch({{0, 40}, {1, 30}, {2, 70}, {3, 16}}),
            (std::vector<int>{0, 1}));
}

TEST_F(MergeTest, ZeroCostNeverMergesAndAFullBatchTakesNoMore) {
  options_.merge_cost_tokens = 0;
  EXPECT_EQ(FirstBatch({{0, 20}, {1, 16}}), (std::vector<int>{0}));
  options_.merge_cost_tokens = 1e9;
  options_.max_batch_size = 3;
  // Room for two: the bucket's best ranked (oldest) two join.
  EXPECT_EQ(FirstBatch({{0, 20}, {1, 5}, {2, 6}, {3, 7}}),
            (std::vector<int>{0, 1, 2}));
}

TEST_F(MergeTest, OnlyLateBatchesMerge) {
  options_.preferred_batch_sizes = {2};
  Queue q(options_);
  Push(q, 0, 20);
  Push(q, 1, 20);  // bucket 1 due by preferred size, not late
  Push(q, 2, 14);
  std::vector<Queue::Dropped> dropped;
  Queue::Batch batch = q.TakeBatch(kT0, false, dropped);
  EXPECT_EQ(Ids(batch), (std::vector<int>{0, 1}));
  Finish(batch);
  Queue::Batch rest = q.TakeAll();
  Finish(rest);
}

TEST_F(MergeTest, DeadTasksAreNotCountedAndAreDroppedOnTheWay) {
  Queue q(options_);
  Push(q, 0, 20);
  Push(q, 1, 25);  // anchor batch {0, 1}, padded to 25
  auto dying = Task(2, 60, 0, kT0 + absl::Milliseconds(1));
  ASSERT_TRUE(q.Push(dying, kT0).ok());  // bucket 2, expired at take time
  Push(q, 3, 33);  // live: 2 x (33 - 25) = 16 < 20 joins; the dead 60 would
                   // have made it 2 x 35 = 70
  std::vector<Queue::Dropped> dropped;
  Queue::Batch batch = q.TakeBatch(kT0 + absl::Milliseconds(1), false, dropped);
  EXPECT_EQ(Ids(batch), (std::vector<int>{0, 1, 3}));
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].task->id(), 2);
  EXPECT_TRUE(absl::IsDeadlineExceeded(dropped[0].status));
  EXPECT_TRUE(q.empty());
  Finish(batch);
  Finish(dropped);
}

TEST_F(TaskQueueTest, TakeBatchSkipsDeadTasksAndKeepsLooking) {
  options_.max_batch_size = 2;
  Queue q(options_);
  for (int id : {0, 1}) {  // bucket 0, full, but dead at take time
    auto dying = Task(id, 10, 0, kT0 + absl::Milliseconds(1));
    ASSERT_TRUE(q.Push(dying, kT0).ok());
  }
  Push(q, 2, 100);
  Push(q, 3, 100);
  Push(q, 4, 100);  // bucket 3, full
  std::vector<Queue::Dropped> dropped;
  Queue::Batch batch = q.TakeBatch(kT0 + absl::Milliseconds(1), false, dropped);
  EXPECT_EQ(Ids(batch), (std::vector<int>{2, 3}));
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_TRUE(absl::IsDeadlineExceeded(dropped[0].status));
  EXPECT_EQ(q.size(), 1);
  Finish(batch);
  Finish(dropped);
  Queue::Batch rest = q.TakeAll();
  Finish(rest);
}

TEST_F(TaskQueueTest, FlushMakesEveryBucketDue) {
  options_.max_queue_delay = absl::Hours(1);
  Queue q(options_);
  Push(q, 0, 10);
  std::vector<Queue::Dropped> dropped;
  EXPECT_TRUE(q.TakeBatch(kT0, /*flush=*/false, dropped).empty());
  Queue::Batch batch = q.TakeBatch(kT0, /*flush=*/true, dropped);
  EXPECT_EQ(Ids(batch), std::vector<int>{0});
  Finish(batch);
}

}  // namespace
}  // namespace fusion::batching
