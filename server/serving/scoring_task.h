// One scoring request on its way through the batcher to the model.
//
// Transport-neutral: the API layer supplies a completion callback (which
// answers the RPC) and a cancellation probe. Every task completes exactly
// once: Complete() the first time it is called, or the destructor with
// INTERNAL if the task is dropped without an answer.
#ifndef FUSION_SERVER_SERVING_SCORING_TASK_H_
#define FUSION_SERVER_SERVING_SCORING_TASK_H_

#include <cstdint>
#include <functional>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/runtime/model_runtime.h"

namespace fusion::serving {

struct TaskTiming {
  int64_t queue_us = 0;  // arrival to the start of its batch's collation
  // The batch's collation, forward and split; not the wait between the two.
  int64_t compute_us = 0;
  int64_t collation_us = 0;  // of which the collation
  int32_t batch_size = 0;    // requests computed together with it
};

struct ScoringResult {
  runtime::ScoringOutput output;
  TaskTiming timing;
};

class ScoringTask {
 public:
  using DoneFn = std::function<void(absl::StatusOr<ScoringResult>)>;
  using CancelledFn = std::function<bool()>;

  // `deadline` may be absl::InfiniteFuture(); `cancelled` may be empty;
  // `priority`: 0 is highest.
  ScoringTask(runtime::ScoringInput input, absl::Time arrival,
              absl::Time deadline, CancelledFn cancelled, DoneFn done,
              int priority = 0)
      : input_(std::move(input)),
        arrival_(arrival),
        deadline_(deadline),
        priority_(priority),
        cancelled_(std::move(cancelled)),
        done_(std::move(done)) {}

  ~ScoringTask() {
    if (done_) Complete(absl::InternalError("request dropped unanswered"));
  }

  ScoringTask(const ScoringTask&) = delete;
  ScoringTask& operator=(const ScoringTask&) = delete;

  const runtime::ScoringInput& input() const { return input_; }
  absl::Time arrival() const { return arrival_; }
  absl::Time deadline() const { return deadline_; }
  bool cancelled() const { return cancelled_ && cancelled_(); }
  // For the batcher (batching::BatchScheduler's task contract).
  int priority() const { return priority_; }
  int length() const { return static_cast<int>(input_.token_ids.size()); }
  void Fail(absl::Status status) { Complete(std::move(status)); }

  // Answers the request; later calls do nothing.
  void Complete(absl::StatusOr<ScoringResult> result) {
    if (!done_) return;
    DoneFn done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

 private:
  runtime::ScoringInput input_;
  absl::Time arrival_;
  absl::Time deadline_;
  int priority_;
  CancelledFn cancelled_;
  DoneFn done_;
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_SCORING_TASK_H_
