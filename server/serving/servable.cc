#include "server/serving/servable.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/batching/padding.h"

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
    ServingObserver* observer) {
  static NoOpObserver* const no_op = new NoOpObserver();
  if (!runtime || !tokenizer) {
    return absl::InvalidArgumentError("servable needs a runtime and a tokenizer");
  }
  std::unique_ptr<Servable> servable(
      new Servable(std::move(config), std::move(runtime), std::move(tokenizer)));
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
  options.min_fill_padding_efficiency = batching.min_fill_padding_efficiency();
  options.max_queue_size = batching.max_queue_size();
  options.num_executors = batching.instance_count();
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
  if (queue_) queue_->Shutdown();
}

// The scheduler has already failed expired and cancelled tasks.
void Servable::ExecuteBatch(Queue::Batch& batch) {
  const absl::Time start = absl::Now();
  std::vector<const runtime::ScoringInput*> inputs;
  inputs.reserve(batch.size());
  for (const auto& task : batch) inputs.push_back(&task->input());
  const batching::PaddingStats padding = batching::MeasurePadding(batch);
  auto outputs = runtime_->RunBatch(inputs);
  const int64_t compute_us = absl::ToInt64Microseconds(absl::Now() - start);
  if (!outputs.ok()) {
    for (auto& task : batch) task->Complete(outputs.status());
    return;
  }
  observer_->OnBatchComputed({static_cast<int>(batch.size()),
                              padding.real_tokens, padding.computed_tokens});
  for (size_t i = 0; i < batch.size(); ++i) {
    ScoringResult result;
    result.output = std::move((*outputs)[i]);
    result.timing.queue_us =
        absl::ToInt64Microseconds(start - batch[i]->arrival());
    result.timing.compute_us = compute_us;
    result.timing.batch_size = static_cast<int32_t>(batch.size());
    batch[i]->Complete(std::move(result));
  }
}

}  // namespace fusion::serving
