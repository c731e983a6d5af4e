// One loaded model version: its config, tokenizer, runtime and batch queue.
//
// Submit() hands a validated task to the batch queue. Executor threads (one
// per model instance) collate each batch (ModelRuntime::Prepare); with
// overlap_collation they hand it to a forward thread (ForwardStage) that runs
// the forward and completes the tasks, and take the next batch meanwhile;
// without, they do it all themselves. Tasks whose deadline passed or
// whose RPC was cancelled while queued are failed without being computed.
// A batch whose forward fails (INTERNAL: the model raised) is computed again
// in halves, recursively, so that only the requests the model fails on
// alone fail, with the model's error; the others get their answers. That
// costs at most 2(n - 1) more forwards for a batch of n, none when nothing
// fails. Failures are counted (ServingObserver::OnForwardFailed) and logged
// at most once per 10 s.
// Thread-safety: all methods may be called concurrently.
#ifndef FUSION_SERVER_SERVING_SERVABLE_H_
#define FUSION_SERVER_SERVING_SERVABLE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "fusion/v1/model_config.pb.h"
#include "server/batching/batch_scheduler.h"
#include "server/runtime/model_runtime.h"
#include "server/serving/inference_stats.h"
#include "server/serving/scoring_task.h"
#include "server/serving/serving_observer.h"
#include "server/text/wordpiece_tokenizer.h"

namespace fusion::serving {

class ForwardStage;

struct ServableOptions {
  // Collate batch N+1 while batch N's forward runs (see forward_stage.h).
  bool overlap_collation = true;
};

class Servable {
 public:
  // Takes ownership of the runtime and the tokenizer; starts
  // config.batching().instance_count() executor threads, and as many
  // forward threads with overlap_collation. `observer` may be null; else it
  // must outlive the servable.
  static absl::StatusOr<std::unique_ptr<Servable>> Create(
      fusion::v1::ModelConfig config,
      std::unique_ptr<runtime::ModelRuntime> runtime,
      std::unique_ptr<text::WordPieceTokenizer> tokenizer,
      ServingObserver* observer = nullptr,
      const ServableOptions& servable_options = {});

  ~Servable();  // drains the queue

  const fusion::v1::ModelConfig& config() const { return config_; }
  const text::WordPieceTokenizer& tokenizer() const { return *tokenizer_; }
  std::string version() const { return std::to_string(config_.version()); }
  std::string device() const { return runtime_->device(); }
  runtime::PrecisionPlan precision() const { return runtime_->precision(); }
  // The position of a feature in the model's input, if it exists.
  std::optional<int> FeatureIndex(const std::string& name) const;

  // Takes the task iff OK; otherwise the task stays with the caller:
  // RESOURCE_EXHAUSTED (queue full), UNAVAILABLE (shutting down),
  // INVALID_ARGUMENT (priority out of range), DEADLINE_EXCEEDED or CANCELLED
  // (already so at submission).
  absl::Status Submit(std::unique_ptr<ScoringTask>& task);
  // RESOURCE_EXHAUSTED iff the queue is full now (UNAVAILABLE if shutting
  // down), as Submit would answer: checked before a request is validated
  // and tokenized, so that refusing under overload costs no tokenizing.
  absl::Status CheckRoom() { return queue_->CheckRoom(); }

  // Stops accepting, computes everything queued or collated, joins the
  // executor and forward threads.
  void Drain();
  int queue_depth(int priority) const { return queue_->depth(priority); }
  // Never null: a no-op observer when none was given.
  ServingObserver& observer() const { return *observer_; }
  // Counters for ModelStatistics; batches are recorded here, requests by
  // the API that answers them.
  InferenceStats& stats() const { return stats_; }

 private:
  using Queue = batching::BatchScheduler<ScoringTask>;
  Servable(fusion::v1::ModelConfig config,
           std::unique_ptr<runtime::ModelRuntime> runtime,
           std::unique_ptr<text::WordPieceTokenizer> tokenizer);
  struct CollatedBatch;
  struct Retry;
  void ExecuteBatch(Queue::Batch& batch);
  void Finish(CollatedBatch& batch);
  void Answer(const CollatedBatch& batch,
              absl::Span<std::unique_ptr<ScoringTask>> tasks,
              std::vector<runtime::ScoringOutput>& outputs,
              absl::Duration compute);
  void RetryInHalves(CollatedBatch& batch, const absl::Status& error,
                     absl::Time forward_start);
  void Split(CollatedBatch& batch,
             absl::Span<std::unique_ptr<ScoringTask>> tasks,
             absl::Time forward_start, Retry& retry);
  void FailTasks(absl::Span<std::unique_ptr<ScoringTask>> tasks,
                 const absl::Status& error, Retry& retry);
  void LogForwardFailure(int batch_size, const Retry& retry,
                         absl::Duration elapsed);

  const fusion::v1::ModelConfig config_;
  const std::unique_ptr<runtime::ModelRuntime> runtime_;
  const std::unique_ptr<text::WordPieceTokenizer> tokenizer_;
  absl::flat_hash_map<std::string, int> feature_index_;
  ServingObserver* observer_ = nullptr;
  mutable InferenceStats stats_;
  absl::Mutex failure_log_mu_;
  absl::Time last_failure_log_ ABSL_GUARDED_BY(failure_log_mu_) =
      absl::InfinitePast();
  int failures_unlogged_ ABSL_GUARDED_BY(failure_log_mu_) = 0;
  // Null without overlap_collation. Before queue_: executors hand to it.
  std::unique_ptr<ForwardStage> forward_;
  std::unique_ptr<Queue> queue_;  // last: its threads use the members above
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_SERVABLE_H_
