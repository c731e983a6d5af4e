// Real threads, real clock: many submitters with random lengths, priorities,
// deadlines and cancellations against several executors, some of whose
// batches throw. Whatever the interleaving, every task completes exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "server/batching/batch_scheduler.h"
#include "server/batching/padding.h"
#include "server/batching/test_task.h"

namespace fusion::batching {
namespace {

using testing::CompletionLog;
using testing::TestTask;
using Scheduler = BatchScheduler<TestTask>;

struct StressCase {
  const char* name;
  bool drain;
  bool shutdown_midway;  // Shutdown() while the submitters still submit
};

class StressTest : public ::testing::TestWithParam<StressCase> {};

TEST_P(StressTest, EveryTaskCompletesExactlyOnce) {
  constexpr int kSubmitters = 8;
  constexpr int kPerSubmitter = 2500;
  constexpr int kTasks = kSubmitters * kPerSubmitter;
  const StressCase& param = GetParam();

  BatchSchedulerOptions options;
  options.max_batch_size = 16;
  options.max_queue_delay = absl::Microseconds(500);
  options.preferred_batch_sizes = {8};
  options.max_queue_size = 200;
  options.num_executors = 3;
  options.starvation_age = absl::Milliseconds(5);
  options.drain_on_shutdown = param.drain;

  CompletionLog log(kTasks);
  std::atomic<int> batches{0};
  std::atomic<int> oversized{0};
  std::mutex padding_mu;
  PaddingStats padding;
  auto scheduler = Scheduler::Create(options, [&](Scheduler::Batch&& batch) {
    if (batch.empty() || batch.size() > 16) oversized.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(padding_mu);
      padding += MeasurePadding(batch);
    }
    if (batches.fetch_add(1) % 37 == 36) throw std::runtime_error("boom");
    // A little work, so that batches queue up behind busy executors.
    volatile int64_t sink = 0;
    for (int i = 0; i < 2000; ++i) sink = sink + i;
    for (auto& task : batch) task->Succeed();
  });
  ASSERT_TRUE(scheduler.ok());
  Scheduler& s = **scheduler;

  std::atomic<int> submitted{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      std::uniform_int_distribution<int> length(1, 300), percent(0, 99);
      std::uniform_int_distribution<int> micros(0, 3000);
      std::vector<std::shared_ptr<std::atomic<bool>>> flags;
      for (int i = 0; i < kPerSubmitter; ++i) {
        const int id = t * kPerSubmitter + i;
        absl::Time deadline = absl::InfiniteFuture();
        const int roll = percent(rng);
        if (roll < 5) {
          deadline = absl::Now() - absl::Milliseconds(1);  // refused
        } else if (roll < 30) {
          deadline = absl::Now() + absl::Microseconds(micros(rng));
        }
        std::shared_ptr<std::atomic<bool>> cancel;
        if (percent(rng) < 15) {
          cancel = std::make_shared<std::atomic<bool>>(false);
          flags.push_back(cancel);
        }
        auto task = std::make_unique<TestTask>(
            id, length(rng), percent(rng) % 2, &log, deadline, cancel);
        absl::Status status = s.Enqueue(task);
        if (!status.ok()) task->Fail(status);  // as the API layer does
        // A client backs off when told the server is full.
        if (absl::IsResourceExhausted(status)) std::this_thread::yield();
        submitted.fetch_add(1);
        if (!flags.empty() && percent(rng) < 20) {
          flags[percent(rng) % flags.size()]->store(true);
        }
        if (i % 64 == 0) std::this_thread::yield();
      }
    });
  }
  if (param.shutdown_midway) {
    while (submitted.load() < kTasks / 2) std::this_thread::yield();
    s.Shutdown();
  }
  for (auto& thread : submitters) thread.join();
  s.Shutdown();

  std::map<absl::StatusCode, int> by_code;
  for (int id = 0; id < kTasks; ++id) {
    ASSERT_EQ(log.times(id), 1) << "task " << id;
    ++by_code[log.code(id)];
  }
  EXPECT_EQ(log.unanswered(), 0);
  EXPECT_EQ(oversized.load(), 0);
  EXPECT_EQ(s.depth(), 0);
  const BatchSchedulerCounters c = s.counters();
  EXPECT_EQ(c.executor_exceptions, batches.load() / 37);
  std::printf(
      "%s: %d batches (%.1f tasks avg), padding efficiency %.3f;", param.name,
      batches.load(),
      static_cast<double>(c.batched_tasks) / std::max(1, batches.load()),
      padding.efficiency());
  for (const auto& [code, n] : by_code) {
    std::printf(" %s=%d", absl::StatusCodeToString(code).c_str(), n);
  }
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(
    Shutdowns, StressTest,
    ::testing::Values(StressCase{"Drain", true, false},
                      StressCase{"DrainMidway", true, true},
                      StressCase{"FailMidway", false, true}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace fusion::batching
