// The forward half of a model's two-stage pipeline: collate | forward.
//
// The batch scheduler's executor threads collate a batch (tokens -> padded
// tensors, on a GPU the copy to the device), then Hand() the rest of its work
// (forward, split, answering the requests) to one of this stage's forward
// threads, one per model instance, and go back for the next batch: batch N+1
// is collated while batch N's forward runs.
//
// Hand() blocks until a forward thread is free, then gives it the job. So at
// most `instances` jobs run and each executor holds at most one collated
// batch waiting in Hand(): two batches per instance, never more. While every
// instance is busy the executors do not come back to the queue, so new
// requests wait in the queue and form larger batches.
//
// One pool for all of a servable's executors rather than a stage bound to
// each executor thread: the instances share one runtime and are
// interchangeable, so no thread -> stage map is needed and the bound above
// holds all the same.
//
// Thread-safety: every method may be called from any thread; a job must not
// call back into its stage.
#ifndef FUSION_SERVER_SERVING_FORWARD_STAGE_H_
#define FUSION_SERVER_SERVING_FORWARD_STAGE_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"

namespace fusion::serving {

class ForwardStage {
 public:
  // Owns every completion it was handed: a job that throws is logged and
  // destroyed, so what it owns must complete itself on destruction.
  using Job = absl::AnyInvocable<void() &&>;

  // Starts max(1, instances) forward threads.
  explicit ForwardStage(int instances);
  ~ForwardStage();  // Shutdown()

  ForwardStage(const ForwardStage&) = delete;
  ForwardStage& operator=(const ForwardStage&) = delete;

  // Waits for a free forward thread and hands it `job`. Once Shutdown() has
  // begun, runs `job` on the calling thread instead, so it still runs.
  void Hand(Job job);

  // Runs every job already handed over, then joins the forward threads.
  // Idempotent; concurrent calls all wait for the end.
  void Shutdown();

 private:
  void Loop();

  const int instances_;
  // std::mutex, as in batching/: TSan does not see Debian's Abseil.
  std::mutex mu_;
  std::condition_variable job_cv_;             // jobs_, stopping_
  std::condition_variable free_cv_;            // busy_, stopping_
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);  // handed, not yet started
  int busy_ ABSL_GUARDED_BY(mu_) = 0;          // handed, not yet finished
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::mutex join_mu_;  // serialises the joins of concurrent Shutdown()s
  std::vector<std::thread> threads_;
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_FORWARD_STAGE_H_
