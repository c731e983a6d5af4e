#include "server/serving/servable.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"

namespace fusion::serving {
namespace {

using runtime::FakeModelRuntime;

// Long enough never to be reached unless the servable is broken.
constexpr absl::Duration kWait = absl::Seconds(10);

// A servable over the fake runtime; `fake` stays owned by the servable.
std::unique_ptr<Servable> MakeServable(FakeModelRuntime** fake,
                                       int max_queue_size = 100,
                                       int instance_count = 1,
                                       ServableOptions options = {},
                                       ServingObserver* observer = nullptr) {
  fusion::v1::ModelConfig config;
  google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "m"
           version: 1
           classes: "a"
           classes: "b"
           positive_class: 1
           max_tokens: 16
           attention_heads: 2
           features { name: "x" }
           features { name: "y" }
           batching { max_queue_delay_us: 1 })pb",
      &config);
  config.mutable_batching()->set_max_queue_size(max_queue_size);
  config.mutable_batching()->set_instance_count(instance_count);
  auto normalized = runtime::NormalizeConfig(config);
  EXPECT_TRUE(normalized.ok()) << normalized.status();
  auto runtime = std::make_unique<FakeModelRuntime>();
  *fake = runtime.get();
  auto tokenizer = text::WordPieceTokenizer::Create(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"});
  EXPECT_TRUE(tokenizer.ok());
  auto servable = Servable::Create(*normalized, std::move(runtime),
                                   std::move(*tokenizer), observer, options);
  EXPECT_TRUE(servable.ok()) << servable.status();
  return std::move(*servable);
}

struct Outcome {
  absl::Notification done;
  absl::StatusOr<ScoringResult> result = absl::UnknownError("unset");
  int completions = 0;
};

// [CLS] hello... [SEP], `tokens` long: the fake answers tokens / 1000.
std::unique_ptr<ScoringTask> MakeTask(
    Outcome& outcome, absl::Time deadline = absl::InfiniteFuture(),
    bool cancelled = false, int tokens = 3, float feature = 1.0f) {
  runtime::ScoringInput input;
  input.token_ids.assign(tokens, 4);
  input.token_ids.front() = 2;
  input.token_ids.back() = 3;
  input.features = {feature, 2.0f};
  return std::make_unique<ScoringTask>(
      input, absl::Now(), deadline, [cancelled] { return cancelled; },
      [&outcome](absl::StatusOr<ScoringResult> result) {
        outcome.result = std::move(result);
        ++outcome.completions;
        outcome.done.Notify();
      });
}

// Releases the fake and drains the servable at scope exit, so that a failed
// ASSERT neither hangs on a held forward nor answers destroyed outcomes:
// declare it after the outcomes.
auto ReleaseAndDrainAtExit(FakeModelRuntime* fake, Servable& servable) {
  return absl::MakeCleanup([fake, &servable] {
    fake->Release();
    servable.Drain();
  });
}

ServableOptions Overlap(bool on) {
  ServableOptions options;
  options.overlap_collation = on;
  return options;
}

// Submits a new task of `tokens` tokens that reports to `outcome`.
void SubmitOk(Servable& servable, Outcome& outcome, int tokens = 3,
              float feature = 1.0f) {
  auto task = MakeTask(outcome, absl::InfiniteFuture(), false, tokens, feature);
  EXPECT_TRUE(servable.Submit(task).ok());
}

// Waits for every outcome; each must be answered once, OK, with the fake's
// tokens / 1000 for its request.
void ExpectAllOk(const std::vector<Outcome*>& outcomes,
                 const std::vector<int>& tokens) {
  ASSERT_EQ(outcomes.size(), tokens.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    ASSERT_TRUE(outcomes[i]->done.WaitForNotificationWithTimeout(kWait)) << i;
    EXPECT_EQ(outcomes[i]->completions, 1) << i;
    ASSERT_TRUE(outcomes[i]->result.ok()) << i << outcomes[i]->result.status();
    EXPECT_FLOAT_EQ(outcomes[i]->result->output.probabilities[1],
                    tokens[i] / 1000.0f)
        << i;
  }
}

// Waits for `outcome`: answered once, with `status`.
void ExpectFailed(Outcome& outcome, const absl::Status& status) {
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(outcome.result.status(), status);
  EXPECT_EQ(outcome.completions, 1);
}

TEST(ServableTest, ComputesAndReportsTiming) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake);
  Outcome outcome;
  auto task = MakeTask(outcome);
  ASSERT_TRUE(servable->Submit(task).ok());
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  EXPECT_FLOAT_EQ(outcome.result->output.probabilities[1], 0.003f);
  EXPECT_EQ(outcome.result->timing.batch_size, 1);
  EXPECT_GE(outcome.result->timing.queue_us, 0);
  EXPECT_EQ(outcome.completions, 1);
}

TEST(ServableTest, ExpiredAndCancelledTasksAreNotComputed) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake);
  Outcome expired, cancelled;
  auto late = MakeTask(expired, absl::Now() - absl::Seconds(1));
  auto gone = MakeTask(cancelled, absl::InfiniteFuture(), /*cancelled=*/true);
  // Refused at once; the caller answers them (as the API layer does).
  EXPECT_EQ(servable->Submit(late).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(servable->Submit(gone).code(), absl::StatusCode::kCancelled);
  ASSERT_NE(late, nullptr);
  ASSERT_NE(gone, nullptr);
  servable->Drain();
  EXPECT_TRUE(fake->batch_sizes().empty());  // nothing reached the model
}

TEST(ServableTest, FullQueueRejectsAndDrainAnswersEveryone) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake, /*max_queue_size=*/2);
  fake->Hold();
  std::vector<std::unique_ptr<Outcome>> outcomes;
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 10; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    auto task = MakeTask(*outcomes.back());
    absl::Status status = servable->Submit(task);
    if (status.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
      ++rejected;
      task.reset();  // the destructor answers the task that was refused
    }
  }
  EXPECT_GT(rejected, 0);
  fake->Release();
  servable->Drain();
  int answered_ok = 0;
  for (auto& outcome : outcomes) {
    ASSERT_TRUE(outcome->done.HasBeenNotified());
    EXPECT_EQ(outcome->completions, 1);
    answered_ok += outcome->result.ok();
  }
  EXPECT_EQ(answered_ok, accepted);
}

class ServableStageTest : public ::testing::TestWithParam<bool> {};

// Either stage's failure fails its own batch with the runtime's status;
// the next batch is computed.
TEST_P(ServableStageTest, FailureFailsItsBatchOnlyAndServingGoesOn) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake, 100, 1, Overlap(GetParam()));
  Outcome bad_input, forward_failed, fine;
  fake->FailNextPrepare(absl::InvalidArgumentError("bad input"));
  SubmitOk(*servable, bad_input);
  ExpectFailed(bad_input, absl::InvalidArgumentError("bad input"));
  fake->FailNextBatch(absl::InternalError("boom"));
  SubmitOk(*servable, forward_failed);
  ExpectFailed(forward_failed, absl::InternalError("boom"));
  SubmitOk(*servable, fine, 7);
  ExpectAllOk({&fine}, {7});
  EXPECT_EQ(fake->batch_sizes(), (std::vector<int>{1, 1}));
}

INSTANTIATE_TEST_SUITE_P(Overlap, ServableStageTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "On" : "Off";
                         });

TEST(ServableTest, CollatesTheNextBatchWhileTheForwardRuns) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake);
  fake->Hold();
  Outcome first, second, third, fourth;
  auto cleanup = ReleaseAndDrainAtExit(fake, *servable);
  SubmitOk(*servable, first, 3);
  ASSERT_TRUE(fake->AwaitRunsStarted(1));
  SubmitOk(*servable, second, 4);
  ASSERT_TRUE(fake->AwaitPrepared(2));  // while the first forward is still held
  EXPECT_TRUE(fake->batch_sizes().empty());
  // The executor now waits to hand batch 2 over, so the pipeline takes no
  // third batch: these two wait in the queue and leave together. The pause
  // gives a deeper pipeline time to collate `third` alone, and makes the
  // wait for the forward thread long enough to tell from compute_us.
  SubmitOk(*servable, third, 5);
  constexpr absl::Duration kHeld = absl::Milliseconds(100);
  absl::SleepFor(kHeld);
  SubmitOk(*servable, fourth, 5);
  EXPECT_EQ(fake->events().size(), 2u);
  fake->Release();
  ExpectAllOk({&first, &second, &third, &fourth}, {3, 4, 5, 5});
  EXPECT_EQ(fake->batch_sizes(), (std::vector<int>{1, 1, 2}));
  const auto events = fake->events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_GE(events[1].prepare_start, events[0].run_start);
  EXPECT_LE(events[1].prepare_end, events[0].run_end);
  EXPECT_EQ(fourth.result->timing.batch_size, 2);
  EXPECT_LT(second.result->timing.compute_us, absl::ToInt64Microseconds(kHeld));
  EXPECT_LT(second.result->timing.queue_us, absl::ToInt64Microseconds(kHeld));
}

TEST(ServableTest, WithoutOverlapCollatesAfterTheForward) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake, 100, 1, Overlap(false));
  fake->Hold();
  Outcome first, second;
  auto cleanup = ReleaseAndDrainAtExit(fake, *servable);
  SubmitOk(*servable, first, 3);
  ASSERT_TRUE(fake->AwaitRunsStarted(1));
  SubmitOk(*servable, second, 4);
  // Time in which a pipelined servable would collate `second`.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake->events().size(), 1u);
  fake->Release();
  ExpectAllOk({&first, &second}, {3, 4});
  const auto events = fake->events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_GE(events[1].prepare_start, events[0].run_end);
}

TEST(ServableTest, FailedPrepareDoesNotWaitForTheForwardAhead) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake);
  fake->Hold();
  fake->FailNextBatch(absl::InternalError("boom"));
  Outcome forward_failed, bad_input, fine;
  auto cleanup = ReleaseAndDrainAtExit(fake, *servable);
  SubmitOk(*servable, forward_failed);
  ASSERT_TRUE(fake->AwaitRunsStarted(1));
  fake->FailNextPrepare(absl::InvalidArgumentError("bad input"));
  SubmitOk(*servable, bad_input);
  // Answered while the first forward is still held.
  ExpectFailed(bad_input, absl::InvalidArgumentError("bad input"));
  SubmitOk(*servable, fine, 6);
  ASSERT_TRUE(fake->AwaitPrepared(3));
  fake->Release();
  ExpectFailed(forward_failed, absl::InternalError("boom"));
  ExpectAllOk({&fine}, {6});
}

TEST(ServableTest, DrainFinishesBatchesInBothStages) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake, /*max_queue_size=*/2);
  fake->Hold();
  Outcome running, collated, queued1, queued2;
  std::vector<Outcome*> all = {&running, &collated, &queued1, &queued2};
  auto cleanup = ReleaseAndDrainAtExit(fake, *servable);
  SubmitOk(*servable, running, 3);
  ASSERT_TRUE(fake->AwaitRunsStarted(1));
  SubmitOk(*servable, collated, 4);
  ASSERT_TRUE(fake->AwaitPrepared(2));
  SubmitOk(*servable, queued1, 5);
  SubmitOk(*servable, queued2, 5);

  absl::Notification drained;
  std::vector<bool> answered_at_drain;
  std::thread drainer([&] {
    servable->Drain();
    for (Outcome* o : all) {
      answered_at_drain.push_back(o->done.HasBeenNotified());
    }
    drained.Notify();
  });
  // The queue is full until Drain begins, then Submit answers UNAVAILABLE.
  Outcome probe_outcome;
  auto probe = MakeTask(probe_outcome);
  while (servable->Submit(probe).code() != absl::StatusCode::kUnavailable) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(drained.HasBeenNotified());
  fake->Release();
  drainer.join();
  EXPECT_EQ(answered_at_drain, std::vector<bool>(all.size(), true));
  ExpectAllOk(all, {3, 4, 5, 5});
  EXPECT_EQ(fake->batch_sizes(), (std::vector<int>{1, 1, 2}));
}

TEST(ServableTest, TwoInstancesRunTwoForwardsAndCollateTwoMore) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake, 100, /*instance_count=*/2);
  fake->Hold();
  Outcome outcomes[4];
  auto cleanup = ReleaseAndDrainAtExit(fake, *servable);
  SubmitOk(*servable, outcomes[0], 3);
  ASSERT_TRUE(fake->AwaitRunsStarted(1));
  SubmitOk(*servable, outcomes[1], 4);
  ASSERT_TRUE(fake->AwaitRunsStarted(2));  // both forwards at once
  SubmitOk(*servable, outcomes[2], 5);
  ASSERT_TRUE(fake->AwaitPrepared(3));
  SubmitOk(*servable, outcomes[3], 6);
  ASSERT_TRUE(fake->AwaitPrepared(4));  // one collated batch waits per executor
  fake->Release();
  ExpectAllOk({&outcomes[0], &outcomes[1], &outcomes[2], &outcomes[3]},
              {3, 4, 5, 6});
  // And under load every task is answered once.
  std::vector<std::unique_ptr<Outcome>> more;
  std::vector<Outcome*> pointers;
  std::vector<int> tokens;
  for (int i = 0; i < 50; ++i) {
    more.push_back(std::make_unique<Outcome>());
    pointers.push_back(more.back().get());
    tokens.push_back(3 + i % 10);
    SubmitOk(*servable, *more.back(), tokens.back());
  }
  ExpectAllOk(pointers, tokens);
}

// Counts what the forward stage reports.
class FailureCounter final : public ServingObserver {
 public:
  void OnRequestStarted() override {}
  void OnRequestFinished(absl::StatusCode, absl::Duration, absl::Duration,
                         absl::Duration) override {}
  void OnBatchComputed(const BatchStats& stats) override {
    computed_ += stats.size;
  }
  void OnForwardFailed(int requests) override { failed_ += requests; }
  int failed() const { return failed_; }
  int computed() const { return computed_; }

 private:
  std::atomic<int> failed_{0};
  std::atomic<int> computed_{0};
};

constexpr float kPoison = -12345.0f;

// Holds the executor in a forward while `tasks` queue up, so that they
// leave as one batch once it is released (the servable must not overlap
// collation: its executor would take the first task alone meanwhile).
// `poisoned`: the indices whose feature is kPoison. Returns the outcomes.
std::vector<std::unique_ptr<Outcome>> RunOneBatch(
    Servable& servable, FakeModelRuntime* fake, int tasks,
    const std::set<int>& poisoned) {
  Outcome blocker;
  std::vector<std::unique_ptr<Outcome>> outcomes;
  fake->Hold();
  SubmitOk(servable, blocker, 9);
  EXPECT_TRUE(fake->AwaitRunsStarted(1));
  for (int i = 0; i < tasks; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    SubmitOk(servable, *outcomes.back(), 3 + i % 2,
             poisoned.count(i) ? kPoison : 1.0f);
  }
  fake->Release();
  ExpectAllOk({&blocker}, {9});
  return outcomes;
}

TEST(ServableTest, AFailedBatchIsComputedAgainInHalvesSoOnlyItsCauseFails) {
  FakeModelRuntime* fake;
  FailureCounter counter;
  auto servable = MakeServable(&fake, 100, 1, Overlap(false), &counter);
  const absl::Status raised =
      absl::InternalError("model forward failed: RuntimeError: poisoned");
  fake->PoisonFeatureValue(kPoison, raised);
  auto outcomes = RunOneBatch(*servable, fake, 8, {5});
  std::vector<Outcome*> good;
  std::vector<int> tokens;
  for (int i = 0; i < 8; ++i) {
    if (i == 5) continue;
    good.push_back(outcomes[i].get());
    tokens.push_back(3 + i % 2);
  }
  ExpectAllOk(good, tokens);
  ExpectFailed(*outcomes[5], raised);
  // The blocker, the batch of 8, then halves down to the poisoned one:
  // 2 log2(8) = 6 more forwards.
  EXPECT_EQ(fake->batch_sizes(), (std::vector<int>{1, 8, 4, 4, 2, 1, 1, 2}));
  EXPECT_EQ(counter.failed(), 1);
  EXPECT_EQ(counter.computed(), 1 + 7);
  // Each answer says the batch it was computed in.
  EXPECT_EQ(outcomes[0]->result->timing.batch_size, 4);
  EXPECT_EQ(outcomes[4]->result->timing.batch_size, 1);
  EXPECT_EQ(outcomes[7]->result->timing.batch_size, 2);
  // And the next batch is computed whole.
  Outcome next;
  SubmitOk(*servable, next, 5);
  ExpectAllOk({&next}, {5});
  EXPECT_EQ(fake->batch_sizes().back(), 1);
  EXPECT_EQ(counter.failed(), 1);
}

TEST(ServableTest, RetriesAreBoundedWhenEveryRequestFails) {
  FakeModelRuntime* fake;
  FailureCounter counter;
  auto servable = MakeServable(&fake, 100, 1, Overlap(false), &counter);
  const absl::Status raised = absl::InternalError("broken model");
  fake->PoisonFeatureValue(kPoison, raised);
  auto outcomes = RunOneBatch(*servable, fake, 5, {0, 1, 2, 3, 4});
  for (auto& outcome : outcomes) ExpectFailed(*outcome, raised);
  // 2n - 1 forwards in all for n = 5: every request alone at worst.
  const std::vector<int> sizes = fake->batch_sizes();
  EXPECT_EQ(sizes.size(), 1u + 2 * 5 - 1) << sizes.size();
  EXPECT_EQ(counter.failed(), 5);
  EXPECT_EQ(counter.computed(), 1);  // the blocker
}

TEST(ServableTest, OnlyTheModelsOwnFailureIsRetried) {
  FakeModelRuntime* fake;
  FailureCounter counter;
  auto servable = MakeServable(&fake, 100, 1, Overlap(false), &counter);
  const absl::Status not_internal =
      absl::InvalidArgumentError("not prepared here");
  fake->PoisonFeatureValue(kPoison, not_internal);
  auto outcomes = RunOneBatch(*servable, fake, 3, {1});
  for (auto& outcome : outcomes) ExpectFailed(*outcome, not_internal);
  EXPECT_EQ(fake->batch_sizes(), (std::vector<int>{1, 3}));
  EXPECT_EQ(counter.failed(), 0);
}

TEST(ScoringTaskTest, DroppedTaskIsAnsweredOnce) {
  Outcome outcome;
  MakeTask(outcome).reset();
  EXPECT_EQ(outcome.completions, 1);
  EXPECT_EQ(outcome.result.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace fusion::serving
