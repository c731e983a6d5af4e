#include "server/serving/servable.h"

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"

namespace fusion::serving {
namespace {

using runtime::FakeModelRuntime;

// A servable over the fake runtime; `fake` stays owned by the servable.
std::unique_ptr<Servable> MakeServable(FakeModelRuntime** fake,
                                       int max_queue_size = 100) {
  fusion::v1::ModelConfig config;
  google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "m" version: 1 classes: "a" classes: "b" positive_class: 1
           max_tokens: 16 attention_heads: 2
           features { name: "x" } features { name: "y" }
           batching { max_queue_delay_us: 1 })pb",
      &config);
  config.mutable_batching()->set_max_queue_size(max_queue_size);
  auto normalized = runtime::NormalizeConfig(config);
  EXPECT_TRUE(normalized.ok()) << normalized.status();
  auto runtime = std::make_unique<FakeModelRuntime>();
  *fake = runtime.get();
  auto tokenizer = text::WordPieceTokenizer::Create(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"});
  EXPECT_TRUE(tokenizer.ok());
  auto servable = Servable::Create(*normalized, std::move(runtime),
                                   std::move(*tokenizer));
  EXPECT_TRUE(servable.ok()) << servable.status();
  return std::move(*servable);
}

struct Outcome {
  absl::Notification done;
  absl::StatusOr<ScoringResult> result = absl::UnknownError("unset");
  int completions = 0;
};

std::unique_ptr<ScoringTask> MakeTask(Outcome& outcome,
                                      absl::Time deadline = absl::InfiniteFuture(),
                                      bool cancelled = false) {
  runtime::ScoringInput input;
  input.token_ids = {2, 4, 3};
  input.features = {1.0f, 2.0f};
  return std::make_unique<ScoringTask>(
      input, absl::Now(), deadline, [cancelled] { return cancelled; },
      [&outcome](absl::StatusOr<ScoringResult> result) {
        outcome.result = std::move(result);
        ++outcome.completions;
        outcome.done.Notify();
      });
}

TEST(ServableTest, ComputesAndReportsTiming) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake);
  Outcome outcome;
  auto task = MakeTask(outcome);
  ASSERT_TRUE(servable->Submit(task).ok());
  outcome.done.WaitForNotification();
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

TEST(ServableTest, ModelFailureFailsItsBatchOnlyAndServingGoesOn) {
  FakeModelRuntime* fake;
  auto servable = MakeServable(&fake);
  fake->FailNextBatch(absl::InternalError("boom"));
  Outcome failed, fine;
  auto first = MakeTask(failed);
  ASSERT_TRUE(servable->Submit(first).ok());
  failed.done.WaitForNotification();
  EXPECT_EQ(failed.result.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.result.status().message(), "boom");
  auto second = MakeTask(fine);
  ASSERT_TRUE(servable->Submit(second).ok());
  fine.done.WaitForNotification();
  EXPECT_TRUE(fine.result.ok());
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

TEST(ScoringTaskTest, DroppedTaskIsAnsweredOnce) {
  Outcome outcome;
  MakeTask(outcome).reset();
  EXPECT_EQ(outcome.completions, 1);
  EXPECT_EQ(outcome.result.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace fusion::serving
