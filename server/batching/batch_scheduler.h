// The dynamic batcher: a bounded queue of tasks, grouped by token length and
// priority, in front of executor threads that run them in batches.
//
// Generic over its task (TensorFlow Serving's BatchScheduler<TaskType>); it
// knows neither gRPC nor Torch. TaskT provides:
//   int priority() const;         // 0 (highest) .. priority_levels - 1
//   int length() const;           // tokens, >= 0; picks the length bucket
//   absl::Time deadline() const;  // absl::InfiniteFuture() if none
//   bool cancelled() const;       // cheap, non-blocking probe
//   void Fail(absl::Status);      // completes the task with a non-OK status
// priority/length/deadline must not change once enqueued. These methods are
// called with the scheduler's lock held, except Fail(), which is never; none
// may call back into the scheduler, and Fail() must not throw.
//
// Batching policy (which batch, when): see task_queue.h. In short, a batch of
// one length bucket leaves when full, when its oldest task has waited
// max_queue_delay (then topped up from neighbouring buckets), or at once when
// a preferred batch size can be filled; higher priority first, with ageing.
//
// Completion: every task accepted by Enqueue() completes exactly once:
//   * in a batch, by the executor callback (ExecuteFn below);
//   * DEADLINE_EXCEEDED if its deadline passes while queued, CANCELLED if
//     cancelled() turns true while queued: checked for every task put in a
//     batch, and for all queued tasks every sweep_interval (threads) or every
//     DispatchOne() (thread-free) - such a task never reaches the executor;
//   * INTERNAL if the executor callback throws (for tasks still in its batch);
//   * UNAVAILABLE at Shutdown() when drain_on_shutdown is false.
//
// Threads: one scheduler thread forms a batch whenever an executor is idle
// and a batch is due, so batches grow while executors are busy; num_executors
// threads run them. Thread-free mode (CreateThreadFree) starts no thread: the
// caller runs batches inline with DispatchOne(), for deterministic tests.
//
// Thread-safety: every public method may be called from any thread, except
// that Shutdown() and the destructor must not be called from the executor
// callback. Enqueue() never blocks on a full queue.
#ifndef FUSION_SERVER_BATCHING_BATCH_SCHEDULER_H_
#define FUSION_SERVER_BATCHING_BATCH_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/batching/clock.h"
#include "server/batching/options.h"
#include "server/batching/task_queue.h"

namespace fusion::batching {

// Monotonic totals since creation, for metrics.
struct BatchSchedulerCounters {
  int64_t enqueued = 0;             // tasks accepted by Enqueue()
  int64_t rejected_full = 0;        // Enqueue() answered RESOURCE_EXHAUSTED
  int64_t batches = 0;              // batches handed to the executor
  int64_t batched_tasks = 0;        // tasks in those batches
  int64_t expired = 0;              // failed DEADLINE_EXCEEDED while queued
  int64_t cancelled = 0;            // failed CANCELLED while queued
  int64_t failed_at_shutdown = 0;   // failed UNAVAILABLE, not drained
  int64_t executor_exceptions = 0;  // batches whose executor threw
};

template <typename TaskT>
class BatchScheduler {
 public:
  using Batch = std::vector<std::unique_ptr<TaskT>>;
  // Runs one batch (never empty) on an executor thread, or inline in
  // thread-free mode, without the scheduler's lock. It owns the tasks'
  // completion: it must complete every task of the batch, and may move the
  // tasks out of `batch` to keep them. If it throws, every task still in
  // `batch` is failed with INTERNAL (Fail() on a task it already completed
  // must then do nothing); tasks it moved out are its own - a callback that
  // takes `Batch` by value moves them all, so TaskT's destructor must complete
  // them. Whatever is left in `batch` on return is destroyed.
  using ExecuteFn = std::function<void(Batch&& batch)>;

  // Starts the scheduler thread and options.num_executors executor threads.
  // INVALID_ARGUMENT for bad options (ValidateOptions), a null callback or a
  // null clock. `clock` must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<BatchScheduler>> Create(
      const BatchSchedulerOptions& options, ExecuteFn execute,
      Clock* clock = Clock::Real()) {
    return CreateImpl(options, std::move(execute), clock, /*threaded=*/true);
  }

  // The same, with no thread at all: batches run only in DispatchOne(),
  // RunUntilIdle() and Shutdown(), on the calling thread.
  static absl::StatusOr<std::unique_ptr<BatchScheduler>> CreateThreadFree(
      const BatchSchedulerOptions& options, ExecuteFn execute, Clock* clock) {
    return CreateImpl(options, std::move(execute), clock, /*threaded=*/false);
  }

  // Shutdown(): drains (or fails) what is queued and joins the threads.
  ~BatchScheduler() { Shutdown(); }

  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Takes `task` iff OK. Otherwise the task stays with the caller, who
  // completes it with the returned status:
  //   UNAVAILABLE        Shutdown() has begun
  //   RESOURCE_EXHAUSTED max_queue_size tasks are queued (never blocks)
  //   INVALID_ARGUMENT   null task, priority outside [0, priority_levels),
  //                      or negative length
  //   DEADLINE_EXCEEDED  its deadline has already passed
  //   CANCELLED          it is already cancelled
  absl::Status Enqueue(std::unique_ptr<TaskT>& task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::UnavailableError("batch scheduler is shutting down");
    }
    const bool was_empty = queue_.empty();
    const absl::Time now = clock_->Now();
    absl::Status status = queue_.Push(task, now);
    if (!status.ok()) {
      if (absl::IsResourceExhausted(status)) ++counters_.rejected_full;
      return status;
    }
    ++counters_.enqueued;
    // Wake the scheduler only when this task changes its plan: it sleeps
    // with no deadline on an empty queue, and this task may complete a batch.
    if (threaded_ &&
        (was_empty || (idle_executors_ > 0 && queue_.NextDueTime() <= now))) {
      scheduler_cv_.notify_one();
    }
    return absl::OkStatus();
  }

  // Stops accepting tasks (Enqueue answers UNAVAILABLE), then runs every
  // queued task through the executor (drain_on_shutdown) or fails them
  // UNAVAILABLE (batches already formed still run), and joins all threads:
  // on return no callback is running and nothing is queued. Idempotent;
  // concurrent calls all wait for the end. Thread-free mode drains inline, on
  // the calling thread.
  void Shutdown() {
    std::vector<Dropped> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (!options_.drain_on_shutdown) {
        for (auto& task : queue_.TakeAll()) {
          dropped.push_back({std::move(task), absl::UnavailableError(
                                                  "server is shutting down")});
        }
        Count(dropped);
      }
      scheduler_cv_.notify_all();
    }
    FailAll(dropped);
    if (threaded_) {
      std::lock_guard<std::mutex> lock(join_mu_);
      if (scheduler_thread_.joinable()) scheduler_thread_.join();
      for (std::thread& thread : executor_threads_) {
        if (thread.joinable()) thread.join();
      }
    } else {
      while (DispatchOne()) {
      }
    }
  }

  // Thread-free mode only (false otherwise): at the clock's current time,
  // fails the queued tasks that expired or were cancelled, then forms at most
  // one due batch and runs the executor on it inline. True iff a batch ran.
  bool DispatchOne() {
    if (threaded_) return false;
    std::vector<Dropped> dropped;
    Batch batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const absl::Time now = clock_->Now();
      queue_.RemoveDead(now, dropped);
      batch = queue_.TakeBatch(now, /*flush=*/stopping_, dropped);
      Count(dropped);
      CountBatch(batch);
    }
    FailAll(dropped);
    if (batch.empty()) return false;
    Run(std::move(batch));
    return true;
  }

  // DispatchOne() until no batch is due; the number of batches run.
  int RunUntilIdle() {
    int batches = 0;
    while (DispatchOne()) ++batches;
    return batches;
  }

  // Tasks waiting (not those in a batch), for fusion_queue_depth.
  int depth() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }
  // Tasks waiting at `priority` (their own level); 0 if out of range.
  int depth(int priority) const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size(priority);
  }
  BatchSchedulerCounters counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    return counters_;
  }
  const BatchSchedulerOptions& options() const { return options_; }

 private:
  using Dropped = typename TaskQueue<TaskT>::Dropped;

  static absl::StatusOr<std::unique_ptr<BatchScheduler>> CreateImpl(
      const BatchSchedulerOptions& options, ExecuteFn execute, Clock* clock,
      bool threaded) {
    if (absl::Status status = ValidateOptions(options); !status.ok()) {
      return status;
    }
    if (!execute) return absl::InvalidArgumentError("batching: no executor");
    if (clock == nullptr) {
      return absl::InvalidArgumentError("batching: no clock");
    }
    std::unique_ptr<BatchScheduler> scheduler(
        new BatchScheduler(options, std::move(execute), clock, threaded));
    if (threaded) scheduler->StartThreads();
    return scheduler;
  }

  BatchScheduler(const BatchSchedulerOptions& options, ExecuteFn execute,
                 Clock* clock, bool threaded)
      : options_(options),
        execute_(std::move(execute)),
        clock_(clock),
        threaded_(threaded),
        queue_(options_) {}

  void StartThreads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_executors_ = options_.num_executors;
    }
    scheduler_thread_ = std::thread([this] { SchedulerLoop(); });
    for (int i = 0; i < options_.num_executors; ++i) {
      executor_threads_.emplace_back([this] { ExecutorLoop(); });
    }
  }

  // Forms batches while executors are idle and batches are due, fails dead
  // tasks, and sleeps until the next due time, sweep, enqueue or idle
  // executor. Ends once stopping with an empty queue.
  void SchedulerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      const absl::Time now = clock_->Now();
      std::vector<Dropped> dropped;
      if (now >= next_sweep_ || stopping_) {
        queue_.RemoveDead(now, dropped);
        next_sweep_ = now + options_.sweep_interval;
      }
      int formed = 0;
      while (idle_executors_ > 0) {
        Batch batch = queue_.TakeBatch(now, /*flush=*/stopping_, dropped);
        if (batch.empty()) break;
        CountBatch(batch);
        --idle_executors_;
        ready_.push_back(std::move(batch));
        ++formed;
      }
      if (formed == 1) executor_cv_.notify_one();
      if (formed > 1) executor_cv_.notify_all();
      if (!dropped.empty()) {
        Count(dropped);
        lock.unlock();  // Fail() answers an RPC: never under our lock
        FailAll(dropped);
        lock.lock();
        continue;  // time has moved on: look again before sleeping
      }
      if (stopping_ && queue_.empty()) {
        scheduler_done_ = true;
        executor_cv_.notify_all();
        return;
      }
      absl::Time wake = absl::InfiniteFuture();
      if (!queue_.empty()) {
        wake = next_sweep_;
        if (idle_executors_ > 0) wake = std::min(wake, queue_.NextDueTime());
      }
      clock_->WaitUntil(scheduler_cv_, lock, wake);
    }
  }

  // Runs the batches the scheduler hands over, until it is done and none is
  // left.
  void ExecutorLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      executor_cv_.wait(lock,
                        [this] { return !ready_.empty() || scheduler_done_; });
      if (ready_.empty()) return;
      Batch batch = std::move(ready_.front());
      ready_.pop_front();
      lock.unlock();
      Run(std::move(batch));  // destroys the tasks before we re-lock
      lock.lock();
      ++idle_executors_;
      scheduler_cv_.notify_one();
    }
  }

  // Exception isolation: a throwing executor fails its batch, not the
  // process, and the thread goes on with the next batch.
  void Run(Batch batch) {
    absl::Status error;
    try {
      execute_(std::move(batch));
      return;
    } catch (const std::exception& e) {
      error =
          absl::InternalError(absl::StrCat("batch executor threw: ", e.what()));
    } catch (...) {
      error = absl::InternalError("batch executor threw a non-std exception");
    }
    for (auto& task : batch) {
      if (task != nullptr) task->Fail(error);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.executor_exceptions;
  }

  static void FailAll(std::vector<Dropped>& dropped) {
    for (Dropped& d : dropped) d.task->Fail(std::move(d.status));
    dropped.clear();
  }

  void Count(const std::vector<Dropped>& dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const Dropped& d : dropped) {
      if (absl::IsDeadlineExceeded(d.status)) ++counters_.expired;
      if (absl::IsCancelled(d.status)) ++counters_.cancelled;
      if (absl::IsUnavailable(d.status)) ++counters_.failed_at_shutdown;
    }
  }

  void CountBatch(const Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (batch.empty()) return;
    ++counters_.batches;
    counters_.batched_tasks += static_cast<int64_t>(batch.size());
  }

  const BatchSchedulerOptions options_;
  const ExecuteFn execute_;
  Clock* const clock_;
  const bool threaded_;

  // std::mutex, not absl::Mutex: Debian's Abseil is not built with TSan, so
  // its synchronisation would be invisible to the race detector.
  mutable std::mutex mu_;
  std::condition_variable scheduler_cv_;  // queue, idle executors, shutdown
  std::condition_variable executor_cv_;   // ready_, scheduler_done_
  TaskQueue<TaskT> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Batch> ready_ ABSL_GUARDED_BY(mu_);  // formed, not yet running
  int idle_executors_ ABSL_GUARDED_BY(mu_) = 0;   // neither running nor owed
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool scheduler_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  BatchSchedulerCounters counters_ ABSL_GUARDED_BY(mu_);

  std::mutex join_mu_;  // serialises the joins of concurrent Shutdown()s
  std::thread scheduler_thread_;
  std::vector<std::thread> executor_threads_;
};

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_BATCH_SCHEDULER_H_
