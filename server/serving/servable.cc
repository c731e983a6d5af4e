#include "server/serving/servable.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/time/clock.h"

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
  batching::BatchQueueOptions options;
  options.max_batch_size = batching.max_batch_size();
  options.max_queue_delay = absl::Microseconds(batching.max_queue_delay_us());
  options.max_queue_size = batching.max_queue_size();
  options.num_executors = batching.instance_count();
  Servable* self = servable.get();
  auto queue = Queue::Create(
      options, [self](Queue::Batch batch) { self->ExecuteBatch(std::move(batch)); });
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

void Servable::ExecuteBatch(Queue::Batch batch) {
  const absl::Time start = absl::Now();
  // Fail what nobody is waiting for any more before spending compute on it.
  std::vector<std::unique_ptr<ScoringTask>> live;
  live.reserve(batch.size());
  for (auto& task : batch) {
    if (task->cancelled()) {
      task->Complete(absl::CancelledError("request cancelled while queued"));
    } else if (start > task->deadline()) {
      task->Complete(absl::DeadlineExceededError(
          "deadline passed while queued; not computed"));
    } else {
      live.push_back(std::move(task));
    }
  }
  if (live.empty()) return;

  std::vector<const runtime::ScoringInput*> inputs;
  inputs.reserve(live.size());
  BatchStats stats;
  stats.size = static_cast<int>(live.size());
  size_t longest = 0;
  for (const auto& task : live) {
    inputs.push_back(&task->input());
    stats.real_tokens += task->input().token_ids.size();
    longest = std::max(longest, task->input().token_ids.size());
  }
  stats.computed_tokens = static_cast<int64_t>(longest) * stats.size;
  auto outputs = runtime_->RunBatch(inputs);
  const int64_t compute_us = absl::ToInt64Microseconds(absl::Now() - start);
  if (outputs.ok()) observer_->OnBatchComputed(stats);
  for (size_t i = 0; i < live.size(); ++i) {
    if (!outputs.ok()) {
      live[i]->Complete(outputs.status());
      continue;
    }
    ScoringResult result;
    result.output = std::move((*outputs)[i]);
    result.timing.queue_us = absl::ToInt64Microseconds(start - live[i]->arrival());
    result.timing.compute_us = compute_us;
    result.timing.batch_size = static_cast<int32_t>(live.size());
    live[i]->Complete(std::move(result));
  }
}

}  // namespace fusion::serving
