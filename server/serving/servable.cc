#include "server/serving/servable.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/batching/padding.h"
#include "server/common/log.h"
#include "server/runtime/torch_error_text.h"
#include "server/serving/forward_stage.h"

namespace fusion::serving {
namespace {

class NoOpObserver final : public ServingObserver {
 public:
  void OnRequestStarted() override {}
  void OnRequestFinished(absl::StatusCode, absl::Duration, absl::Duration,
                         absl::Duration) override {}
  void OnBatchComputed(const BatchStats&) override {}
  void OnForwardFailed(int) override {}
};

}  // namespace

// A batch between its two stages. `prepared` may point into the tasks'
// inputs, so it is declared after `tasks`: destroyed before them.
struct Servable::CollatedBatch {
  Queue::Batch tasks;
  std::unique_ptr<runtime::PreparedBatch> prepared;
  absl::Time start;          // collation began
  absl::Duration collation;  // Prepare's own time
  batching::PaddingStats padding;
};

Servable::Servable(fusion::v1::ModelConfig config,
                   std::unique_ptr<runtime::ModelRuntime> runtime,
                   std::unique_ptr<text::WordPieceTokenizer> tokenizer)
    : config_(std::move(config)),
      runtime_(std::move(runtime)),
      tokenizer_(std::move(tokenizer)) {
  for (int i = 0; i < config_.features_size(); ++i) {
    feature_index_[config_.features(i).name()] = i;
  }
}

Servable::~Servable() { Drain(); }

absl::StatusOr<std::unique_ptr<Servable>> Servable::Create(
    fusion::v1::ModelConfig config,
    std::unique_ptr<runtime::ModelRuntime> runtime,
    std::unique_ptr<text::WordPieceTokenizer> tokenizer,
    ServingObserver* observer, const ServableOptions& servable_options) {
  static NoOpObserver* const no_op = new NoOpObserver();
  if (!runtime || !tokenizer) {
    return absl::InvalidArgumentError(
        "servable needs a runtime and a tokenizer");
  }
  std::unique_ptr<Servable> servable(new Servable(
      std::move(config), std::move(runtime), std::move(tokenizer)));
  servable->observer_ = observer != nullptr ? observer : no_op;
  const auto& batching = servable->config_.batching();
  batching::BatchSchedulerOptions options;
  options.max_batch_size = batching.max_batch_size();
  options.max_queue_delay = absl::Microseconds(batching.max_queue_delay_us());
  options.preferred_batch_sizes.assign(batching.preferred_batch_sizes().begin(),
                                       batching.preferred_batch_sizes().end());
  options.length_bucket_edges.assign(batching.length_bucket_edges().begin(),
                                     batching.length_bucket_edges().end());
  options.priority_levels = batching.priority_levels();
  options.merge_cost_tokens = batching.merge_cost_tokens();
  options.max_queue_size = batching.max_queue_size();
  for (int size : batching.bucket_max_batch_sizes()) {
    options.bucket_max_batch_sizes.push_back(
        std::min(size, batching.max_batch_size()));
  }
  options.max_queue_wait =
      batching.max_queue_wait_us() > 0
          ? absl::Microseconds(batching.max_queue_wait_us())
          : absl::InfiniteDuration();
  options.num_executors = batching.instance_count();
  if (servable_options.overlap_collation) {
    servable->forward_ =
        std::make_unique<ForwardStage>(batching.instance_count());
  }
  Servable* self = servable.get();
  auto queue = Queue::Create(
      options, [self](Queue::Batch&& batch) { self->ExecuteBatch(batch); });
  if (!queue.ok()) return queue.status();
  servable->queue_ = std::move(*queue);
  return servable;
}

std::optional<int> Servable::FeatureIndex(const std::string& name) const {
  auto it = feature_index_.find(name);
  if (it == feature_index_.end()) return std::nullopt;
  return it->second;
}

absl::Status Servable::Submit(std::unique_ptr<ScoringTask>& task) {
  return queue_->Enqueue(task);
}

void Servable::Drain() {
  // The executors are joined first, so every collated batch is handed over
  // before the forward threads are told to finish.
  if (queue_) queue_->Shutdown();
  if (forward_) forward_->Shutdown();
}

// The collation stage, on an executor thread. The scheduler has already
// failed expired and cancelled tasks.
void Servable::ExecuteBatch(Queue::Batch& batch) {
  CollatedBatch collated;
  collated.start = absl::Now();
  std::vector<const runtime::ScoringInput*> inputs;
  inputs.reserve(batch.size());
  for (const auto& task : batch) inputs.push_back(&task->input());
  collated.padding = batching::MeasurePadding(batch);
  auto prepared = runtime_->Prepare(inputs);
  if (!prepared.ok()) {
    for (auto& task : batch) task->Complete(prepared.status());
    return;
  }
  collated.prepared = std::move(*prepared);
  collated.collation = absl::Now() - collated.start;
  collated.tasks = std::move(batch);
  if (forward_ == nullptr) {
    Finish(collated);
    return;
  }
  // Returns once a forward thread is free to take it; this thread may then
  // collate the next batch during this one's forward.
  forward_->Hand(
      [this, collated = std::move(collated)]() mutable { Finish(collated); });
}

// The forward stage: forward, split, answer. The wait in Hand() is left out
// of compute_us: the request was neither queued nor computed then.
void Servable::Finish(CollatedBatch& batch) {
  const absl::Time forward_start = absl::Now();
  auto outputs = runtime_->Run(*batch.prepared);
  const absl::Duration forward = absl::Now() - forward_start;
  const absl::Duration compute = batch.collation + forward;
  if (!outputs.ok()) {
    RetryInHalves(batch, outputs.status(), forward_start);
    return;
  }
  stats_.RecordBatch(static_cast<int>(batch.tasks.size()), batch.collation,
                     forward);
  queue_->RecordBatchCost(batch.padding.real_tokens, compute);
  observer_->OnBatchComputed({static_cast<int>(batch.tasks.size()),
                              batch.padding.real_tokens,
                              batch.padding.computed_tokens, compute});
  Answer(batch, absl::MakeSpan(batch.tasks), *outputs, compute);
}

// Completes `tasks` (of `batch`) with `outputs`, in order.
void Servable::Answer(const CollatedBatch& batch,
                      absl::Span<std::unique_ptr<ScoringTask>> tasks,
                      std::vector<runtime::ScoringOutput>& outputs,
                      absl::Duration compute) {
  for (size_t i = 0; i < tasks.size(); ++i) {
    ScoringResult result;
    result.output = std::move(outputs[i]);
    result.timing.queue_us =
        absl::ToInt64Microseconds(batch.start - tasks[i]->arrival());
    result.timing.compute_us = absl::ToInt64Microseconds(compute);
    result.timing.collation_us = absl::ToInt64Microseconds(batch.collation);
    result.timing.batch_size = static_cast<int32_t>(tasks.size());
    tasks[i]->Complete(std::move(result));
  }
}

// What one failed batch's retries did, for the log.
struct Servable::Retry {
  int forwards = 0;         // retries run
  int failed = 0;           // requests answered with the model's error
  absl::Status last_error;  // the model's, from the smallest failing part
};

// The model raised on the batch: a request of its own may be the cause (an
// input the model cannot take) and the others are blameless. So a failed
// batch of n is computed again in halves, and a failing half in halves
// again: a request fails only if it fails alone. At most 2(n - 1) more
// forwards (each request alone at worst), of ever smaller batches; for one
// bad request, 2 log2(n) forwards whose requests sum to about 2n. Only
// INTERNAL, the model's own failure, is retried.
void Servable::RetryInHalves(CollatedBatch& batch, const absl::Status& error,
                             absl::Time forward_start) {
  Retry retry;
  retry.last_error = error;
  if (error.code() == absl::StatusCode::kInternal && batch.tasks.size() > 1) {
    Split(batch, absl::MakeSpan(batch.tasks), forward_start, retry);
  } else {
    FailTasks(absl::MakeSpan(batch.tasks), error, retry);
  }
  if (error.code() != absl::StatusCode::kInternal) return;
  LogForwardFailure(static_cast<int>(batch.tasks.size()), retry,
                    absl::Now() - forward_start);
}

// Computes each half of `tasks` (which failed together) on its own;
// recurses into a half that fails.
void Servable::Split(CollatedBatch& batch,
                     absl::Span<std::unique_ptr<ScoringTask>> tasks,
                     absl::Time forward_start, Retry& retry) {
  const size_t half = tasks.size() / 2;
  for (auto part : {tasks.subspan(0, half), tasks.subspan(half)}) {
    std::vector<const runtime::ScoringInput*> inputs;
    inputs.reserve(part.size());
    for (const auto& task : part) inputs.push_back(&task->input());
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<runtime::ScoringOutput>> outputs =
        runtime_->RunBatch(inputs);
    const absl::Duration forward = absl::Now() - start;
    ++retry.forwards;
    if (outputs.ok()) {
      stats_.RecordBatch(static_cast<int>(part.size()), absl::ZeroDuration(),
                         forward);
      int64_t real_tokens = 0, longest = 0;
      for (const auto& task : part) {
        real_tokens += task->length();
        longest = std::max<int64_t>(longest, task->length());
      }
      observer_->OnBatchComputed({static_cast<int>(part.size()), real_tokens,
                                  longest * static_cast<int64_t>(part.size()),
                                  forward});
      Answer(batch, part, *outputs,
             batch.collation + (absl::Now() - forward_start));
      continue;
    }
    const absl::Status& error = outputs.status();
    if (error.code() == absl::StatusCode::kInternal && part.size() > 1) {
      Split(batch, part, forward_start, retry);
      continue;
    }
    FailTasks(part, error, retry);
  }
}

// Answers `tasks` with the model's error; counted before they are answered,
// so that a client that sees the error also sees the count.
void Servable::FailTasks(absl::Span<std::unique_ptr<ScoringTask>> tasks,
                         const absl::Status& error, Retry& retry) {
  retry.last_error = error;
  if (error.code() == absl::StatusCode::kInternal) {
    retry.failed += static_cast<int>(tasks.size());
    observer_->OnForwardFailed(static_cast<int>(tasks.size()));
  }
  for (auto& task : tasks) task->Complete(error);
}

// At most one line per kFailureLogInterval: a model that fails on every
// request of a flood must not flood the log too.
void Servable::LogForwardFailure(int batch_size, const Retry& retry,
                                 absl::Duration elapsed) {
  constexpr absl::Duration kFailureLogInterval = absl::Seconds(10);
  int unlogged = 0;
  {
    absl::MutexLock lock(&failure_log_mu_);
    const absl::Time now = absl::Now();
    if (now - last_failure_log_ < kFailureLogInterval) {
      ++failures_unlogged_;
      return;
    }
    last_failure_log_ = now;
    unlogged = std::exchange(failures_unlogged_, 0);
  }
  const std::string model = absl::StrCat(config_.name(), " v", version());
  std::string line = absl::StrCat(
      model, ": the model's forward failed on ", retry.failed, " of ",
      batch_size, " requests of a batch: ", retry.last_error.message());
  if (retry.forwards > 0) {
    absl::StrAppend(&line, "; the batch was computed again in halves (",
                    retry.forwards, " forwards, ",
                    absl::FormatDuration(elapsed), ") and ",
                    batch_size - retry.failed, " requests were answered");
  }
  if (unlogged > 0) {
    absl::StrAppend(&line, " [", unlogged, " more failed batches in the last ",
                    absl::FormatDuration(kFailureLogInterval), " not logged]");
  }
  Log(LogLevel::kError, line);
  if (auto detail = runtime::TorchErrorDetail(retry.last_error)) {
    Log(LogLevel::kError, model, ": LibTorch's whole error: ", *detail);
  }
}

}  // namespace fusion::serving
