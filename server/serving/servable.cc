#include "server/serving/servable.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/batching/padding.h"
#include "server/serving/forward_stage.h"

namespace fusion::serving {
namespace {

class NoOpObserver final : public ServingObserver {
 public:
  void OnRequestStarted() override {}
  void OnRequestFinished(absl::StatusCode, absl::Duration, absl::Duration,
                         absl::Duration) override {}
  void OnBatchComputed(const BatchStats&) override {}
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
  const int64_t compute_us = absl::ToInt64Microseconds(compute);
  if (!outputs.ok()) {
    for (auto& task : batch.tasks) task->Complete(outputs.status());
    return;
  }
  stats_.RecordBatch(static_cast<int>(batch.tasks.size()), batch.collation,
                     forward);
  observer_->OnBatchComputed({static_cast<int>(batch.tasks.size()),
                              batch.padding.real_tokens,
                              batch.padding.computed_tokens, compute});
  for (size_t i = 0; i < batch.tasks.size(); ++i) {
    ScoringResult result;
    result.output = std::move((*outputs)[i]);
    result.timing.queue_us =
        absl::ToInt64Microseconds(batch.start - batch.tasks[i]->arrival());
    result.timing.compute_us = compute_us;
    result.timing.collation_us = absl::ToInt64Microseconds(batch.collation);
    result.timing.batch_size = static_cast<int32_t>(batch.tasks.size());
    batch.tasks[i]->Complete(std::move(result));
  }
}

}  // namespace fusion::serving
