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
// max_queue_delay (then merged with other buckets where that computes less),
// or at once when a preferred batch size can be filled; higher priority
// first, with ageing. With max_queue_delay 0 (the default) a free executor
// takes what is queued at once.
//
// Completion: every task accepted by Enqueue() completes exactly once:
//   * in a batch, by the executor callback (ExecuteFn below);
//   * DEADLINE_EXCEEDED once its deadline passes while queued (threads: at
//     its deadline; thread-free: at the next DispatchOne()), CANCELLED if
//     cancelled() turns true while queued (checked for every task put in a
//     batch, and polled every sweep_interval while tasks wait) - such a task
//     never reaches the executor;
//   * INTERNAL if the executor callback throws (for tasks still in its batch);
//   * UNAVAILABLE at Shutdown() when drain_on_shutdown is false.
//
// Threads: num_executors executor threads; each, when free, forms its own
// batch from what is due at that moment (late binding: batches grow while
// every executor is busy) and runs it, and otherwise sleeps until the next
// due time or an Enqueue() that makes a batch due. No thread polls deadlines
// or due times: a reaper thread sleeps until the earliest queued deadline,
// and polls cancellation every sweep_interval only while tasks wait.
// Thread-free mode (CreateThreadFree) starts no thread: the caller runs batches
// inline with DispatchOne(), for deterministic tests.
//
// Thread-safety: every public method may be called from any thread, except
// that Shutdown() and the destructor must not be called from the executor
// callback. Enqueue() never blocks on a full queue.
#ifndef FUSION_SERVER_BATCHING_BATCH_SCHEDULER_H_
#define FUSION_SERVER_BATCHING_BATCH_SCHEDULER_H_

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
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

// Monotonic totals since creation, read by tests. Not exported: Prometheus
// counts each request's outcome by status code instead
// (fusion_requests_total{code}), which covers these.
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

  // Starts the reaper thread and options.num_executors executor threads.
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
  //   RESOURCE_EXHAUSTED max_queue_size tasks are queued, or the queued
  //                      work exceeds max_queue_wait (never blocks)
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
    absl::Status status = QueuedWorkStatus();
    if (status.ok()) status = queue_.Push(task, now);
    if (!status.ok()) {
      if (absl::IsResourceExhausted(status)) ++counters_.rejected_full;
      return status;
    }
    ++counters_.enqueued;
    if (!threaded_) return absl::OkStatus();
    // Wake a sleeping executor only when this task changes its plan: it
    // sleeps with no deadline on an empty queue, and this task may make a
    // batch due. Otherwise, the reaper watches it until a batch takes it.
    const bool taken_now = idle_executors_ > 0 && queue_.NextDueTime() <= now;
    if (idle_executors_ > 0 && (was_empty || taken_now)) {
      executor_cv_.notify_one();
    }
    if (!taken_now) WakeReaperIfNeeded();
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
      executor_cv_.notify_all();
      reaper_cv_.notify_all();
    }
    FailAll(dropped);
    if (threaded_) {
      std::lock_guard<std::mutex> lock(join_mu_);
      if (reaper_thread_.joinable()) reaper_thread_.join();
      for (std::thread& thread : executor_threads_) {
        if (thread.joinable()) thread.join();
      }
    } else {
      while (DispatchOne()) {
      }
    }
  }

  // RESOURCE_EXHAUSTED (the message Enqueue gives, counted as a rejection)
  // iff the queue is full now, UNAVAILABLE once Shutdown() has begun: lets
  // a caller refuse before it spends work on a task (tokenizing) that
  // Enqueue would refuse. OK promises nothing: the queue is shared, and
  // Enqueue checks again.
  absl::Status CheckRoom() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::UnavailableError("batch scheduler is shutting down");
    }
    absl::Status room =
        queue_.size() < options_.max_queue_size
            ? QueuedWorkStatus()
            : TaskQueue<TaskT>::FullError(options_.max_queue_size);
    if (!room.ok()) ++counters_.rejected_full;
    return room;
  }

  // A batch whose requests held `tokens` token positions in all (their own
  // lengths: the padding a batch adds is part of their cost) took
  // `compute`: updates the estimate behind max_queue_wait (a moving average,
  // so that it follows the CPU the forwards really get).
  void RecordBatchCost(int64_t tokens, absl::Duration compute) {
    const double positions =
        static_cast<double>(tokens) + options_.merge_cost_tokens;
    if (positions <= 0 || compute <= absl::ZeroDuration()) return;
    const double seconds = absl::ToDoubleSeconds(compute) / positions;
    std::lock_guard<std::mutex> lock(mu_);
    seconds_per_position_ =
        seconds_per_position_ == 0
            ? seconds
            : seconds_per_position_ +
                  kCostSmoothing * (seconds - seconds_per_position_);
  }

  // The time the queued tasks would take to compute, by that estimate;
  // zero before the first batch was recorded.
  absl::Duration EstimatedQueuedWork() const {
    std::lock_guard<std::mutex> lock(mu_);
    return QueuedWorkLocked();
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

  // Weight of the newest batch in the seconds-per-position average.
  static constexpr double kCostSmoothing = 0.1;

  absl::Duration QueuedWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (seconds_per_position_ == 0 || queue_.empty()) {
      return absl::ZeroDuration();
    }
    const double positions =
        static_cast<double>(queue_.queued_tokens()) +
        queue_.fewest_batches() * options_.merge_cost_tokens;
    return absl::Seconds(positions * seconds_per_position_ /
                         options_.num_executors);
  }

  // RESOURCE_EXHAUSTED iff the queued work is past max_queue_wait.
  absl::Status QueuedWorkStatus() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (options_.max_queue_wait == absl::InfiniteDuration()) {
      return absl::OkStatus();
    }
    const absl::Duration work = QueuedWorkLocked();
    if (work <= options_.max_queue_wait) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrCat(
        "queue full (about ", absl::ToInt64Milliseconds(work),
        " ms of work waiting; max_queue_wait ",
        absl::ToInt64Milliseconds(options_.max_queue_wait), " ms)"));
  }

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
    reaper_thread_ = std::thread([this] {
      NameThisThread("batch-reaper");
      ReaperLoop();
    });
    for (int i = 0; i < options_.num_executors; ++i) {
      executor_threads_.emplace_back([this] {
        NameThisThread("batch-executor");
        ExecutorLoop();
      });
    }
  }

  // So that top, perf and /proc tell the batcher's threads from gRPC's.
  static void NameThisThread(const char* name) {
#ifdef __linux__
    pthread_setname_np(pthread_self(), name);  // at most 15 characters
#endif
  }

  // Takes the batch due now and runs it, again and again; sleeps while none
  // is due. Once stopping, every queued task is due (flush); ends when the
  // queue is empty.
  void ExecutorLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      const absl::Time now = clock_->Now();
      std::vector<Dropped> dropped;
      Batch batch = queue_.TakeBatch(now, /*flush=*/stopping_, dropped);
      Count(dropped);
      if (!batch.empty()) {
        CountBatch(batch);
        // Tasks are left and an executor sleeps: it may sleep with no
        // timeout (it saw an empty queue) or past what is due now, so wake
        // one to take the next batch or to time its wait again.
        if (idle_executors_ > 0 && !queue_.empty()) executor_cv_.notify_one();
        WakeReaperIfNeeded();  // the tasks left behind wait for a while
      }
      if (!batch.empty() || !dropped.empty()) {
        lock.unlock();  // Fail() and the batch answer RPCs: never under lock
        FailAll(dropped);
        if (!batch.empty()) Run(std::move(batch));  // destroys its tasks
        lock.lock();
        continue;
      }
      if (stopping_ && queue_.empty()) return;
      ++idle_executors_;
      clock_->WaitUntil(executor_cv_, lock, queue_.NextDueTime());
      --idle_executors_;
    }
  }

  // Fails queued tasks at their deadline and polls cancellation every
  // sweep_interval, sleeping while the queue is empty. Ends at Shutdown()
  // (the executors flush what is left, dropping dead tasks on the way).
  void ReaperLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    absl::Time next_poll = absl::InfinitePast();
    while (!stopping_) {
      const absl::Time now = clock_->Now();
      std::vector<Dropped> dropped;
      if (!queue_.empty() &&
          (now >= next_poll || now >= queue_.EarliestDeadline())) {
        queue_.RemoveDead(now, dropped);
        if (now >= next_poll) next_poll = now + options_.sweep_interval;
      }
      if (!dropped.empty()) {
        Count(dropped);
        lock.unlock();
        FailAll(dropped);
        lock.lock();
        continue;
      }
      reaper_wake_ = queue_.empty()
                         ? absl::InfiniteFuture()
                         : std::min(next_poll, queue_.EarliestDeadline());
      reaper_sleeping_ = true;
      clock_->WaitUntil(reaper_cv_, lock, reaper_wake_);
      reaper_sleeping_ = false;
    }
  }

  // Wakes the reaper when tasks wait that it does not watch yet: it sleeps
  // with no timeout on an empty queue, or past an earlier deadline. An awake
  // reaper looks at the queue before it sleeps again.
  void WakeReaperIfNeeded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!reaper_sleeping_ || queue_.empty()) return;
    if (reaper_wake_ == absl::InfiniteFuture() ||
        queue_.EarliestDeadline() < reaper_wake_) {
      reaper_cv_.notify_one();
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
  std::condition_variable executor_cv_;  // a batch may be due, or shutdown
  std::condition_variable reaper_cv_;    // tasks to watch, or shutdown
  TaskQueue<TaskT> queue_ ABSL_GUARDED_BY(mu_);
  int idle_executors_ ABSL_GUARDED_BY(mu_) = 0;  // sleeping in ExecutorLoop
  bool reaper_sleeping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time reaper_wake_ ABSL_GUARDED_BY(mu_);  // while reaper_sleeping_
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  BatchSchedulerCounters counters_ ABSL_GUARDED_BY(mu_);
  // RecordBatchCost's average; 0 until the first batch.
  double seconds_per_position_ ABSL_GUARDED_BY(mu_) = 0;

  std::mutex join_mu_;  // serialises the joins of concurrent Shutdown()s
  std::thread reaper_thread_;
  std::vector<std::thread> executor_threads_;
};

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_BATCH_SCHEDULER_H_
