// The batcher's queue and batching policy: a pure, single-threaded data
// structure (BatchScheduler adds the threads and the lock), so that every rule
// below can be unit-tested with plain calls and explicit times.
//
// Layout: one FIFO per (length bucket, priority level). Ranking: a task ranks
// by its priority, or as priority 0 once it has waited starvation_age
// (ageing), then by arrival. Rules, evaluated by TakeBatch(now):
//
//  * A bucket's largest batch is its bucket_max_batch_sizes entry, else
//    max_batch_size ("its size" below).
//  * A bucket is due when it holds its size in tasks ("full"), or its
//    oldest task has waited max_queue_delay ("late"; always, when flushing),
//    or it holds at least the smallest preferred batch size ("preferred").
//  * Of the due buckets, the one whose best task ranks highest is served.
//  * Full: its size in tasks of that bucket, best ranked first.
//    Preferred: the largest preferred size the bucket can fill, from it alone.
//    Late: the whole bucket, up to its size, then merged with other
//    buckets, nearest first (the shorter one first at equal distance). A
//    forward costs about merge_cost_tokens + batch size x padded length, so
//    a bucket's best ranked tasks (as many as fit) join the batch iff one
//    merged forward computes fewer positions than the two separate ones
//    would: (n + k) x max(L, Lk) - n x L - k x Lk < merge_cost_tokens, for n
//    tasks padded to L in the batch and k to Lk from the bucket. Short
//    requests merge freely when the fixed cost dominates (light load, GPU);
//    full buckets stay apart when padding would cost more (saturated CPU).
//    A merged batch stays within the size of every bucket it holds.
//  * A task past its deadline (deadline <= now) or cancelled is never put in a
//    batch: it comes back as Dropped with DEADLINE_EXCEEDED or CANCELLED.
//
// TaskT must provide: int priority() const, int length() const,
// absl::Time deadline() const and bool cancelled() const. Priority, length and
// deadline are read once, at Push() (length again when batches merge: it
// must not change); cancelled() whenever a task is checked.
//
// Thread-compatible, not thread-safe.
#ifndef FUSION_SERVER_BATCHING_TASK_QUEUE_H_
#define FUSION_SERVER_BATCHING_TASK_QUEUE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/batching/options.h"

namespace fusion::batching {

// The bucket of a task of `length` tokens: the first edge >= length, or
// edges.size() for lengths above the last edge.
inline int BucketIndex(const std::vector<int>& edges, int length) {
  return static_cast<int>(std::lower_bound(edges.begin(), edges.end(), length) -
                          edges.begin());
}

template <typename TaskT>
class TaskQueue {
 public:
  using Batch = std::vector<std::unique_ptr<TaskT>>;
  // A task removed without being batched, and the status to fail it with.
  struct Dropped {
    std::unique_ptr<TaskT> task;
    absl::Status status;
  };

  // `options` must have passed ValidateOptions().
  explicit TaskQueue(const BatchSchedulerOptions& options)
      : options_(options),
        preferred_(options.preferred_batch_sizes),
        buckets_(options.length_bucket_edges.size() + 1),
        bucket_count_(buckets_.size(), 0),
        priority_count_(options.priority_levels, 0) {
    // Built in place: a vector of FIFOs of move-only entries cannot be copied.
    for (auto& levels : buckets_) levels.resize(options.priority_levels);
    std::sort(preferred_.begin(), preferred_.end());
    preferred_.erase(std::unique(preferred_.begin(), preferred_.end()),
                     preferred_.end());
  }

  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // What Push returns when max_queue_size tasks are queued.
  static absl::Status FullError(int max_queue_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("queue full (", max_queue_size, " requests waiting)"));
  }

  // Takes `task` iff OK. Otherwise leaves it with the caller and returns
  // INVALID_ARGUMENT (null task, priority outside [0, priority_levels),
  // negative length), RESOURCE_EXHAUSTED (max_queue_size tasks queued),
  // DEADLINE_EXCEEDED (deadline <= now) or CANCELLED.
  absl::Status Push(std::unique_ptr<TaskT>& task, absl::Time now) {
    if (task == nullptr) return absl::InvalidArgumentError("null task");
    const int priority = task->priority();
    if (priority < 0 || priority >= options_.priority_levels) {
      return absl::InvalidArgumentError(
          absl::StrCat("priority ", priority, " is outside [0, ",
                       options_.priority_levels, ") (0 is highest)"));
    }
    const int length = task->length();
    if (length < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative task length ", length));
    }
    if (size_ >= options_.max_queue_size) {
      return FullError(options_.max_queue_size);
    }
    const absl::Time deadline = task->deadline();
    if (deadline <= now) {
      return absl::DeadlineExceededError("deadline passed before queueing");
    }
    if (task->cancelled()) return absl::CancelledError("request cancelled");
    Entry entry{nullptr, now, deadline, next_seq_, length, priority};
    ++next_seq_;
    entry.task = std::move(task);
    const int bucket = BucketIndex(options_.length_bucket_edges, length);
    buckets_[bucket][priority].push_back(std::move(entry));
    ++bucket_count_[bucket];
    ++priority_count_[priority];
    ++size_;
    queued_tokens_ += length;
    earliest_deadline_ = std::min(earliest_deadline_, deadline);
    return absl::OkStatus();
  }

  // Removes every queued task that is past its deadline or cancelled.
  void RemoveDead(absl::Time now, std::vector<Dropped>& dropped) {
    earliest_deadline_ = absl::InfiniteFuture();
    for (size_t b = 0; b < buckets_.size(); ++b) {
      for (auto& fifo : buckets_[b]) {
        size_t kept = 0;
        for (size_t i = 0; i < fifo.size(); ++i) {
          absl::Status dead = DeadStatus(fifo[i], *fifo[i].task, now);
          if (!dead.ok()) {
            Forget(b, fifo[i]);
            dropped.push_back({std::move(fifo[i].task), std::move(dead)});
          } else {
            earliest_deadline_ = std::min(earliest_deadline_, fifo[i].deadline);
            if (kept != i) fifo[kept] = std::move(fifo[i]);
            ++kept;
          }
        }
        fifo.erase(fifo.begin() + kept, fifo.end());
      }
    }
  }

  // Removes and returns the batch due at `now` by the rules above, or an
  // empty batch if none is due. `flush` makes every bucket due (shutdown).
  // Dead tasks met on the way are appended to `dropped`.
  Batch TakeBatch(absl::Time now, bool flush, std::vector<Dropped>& dropped) {
    while (size_ > 0) {
      const size_t dropped_before = dropped.size();
      Batch batch = TakeBatchOnce(now, flush, dropped);
      // Empty only because every task picked was dead: those are gone now,
      // so look again.
      if (!batch.empty() || dropped.size() == dropped_before) return batch;
    }
    return {};
  }

  // The earliest time a batch falls due by the delay rule: InfinitePast if
  // one is due by size already, InfiniteFuture if the queue is empty.
  absl::Time NextDueTime() const {
    absl::Time due = absl::InfiniteFuture();
    for (size_t b = 0; b < buckets_.size(); ++b) {
      if (bucket_count_[b] == 0) continue;
      if (DueBySize(b, bucket_count_[b])) return absl::InfinitePast();
      due = std::min(due, Oldest(b) + options_.max_queue_delay);
    }
    return due;
  }

  // Never later than the earliest deadline of a queued task: exact after
  // RemoveDead(), possibly earlier once tasks have left in batches (a waiter
  // that wakes at it early finds nothing to do). InfiniteFuture when empty.
  absl::Time EarliestDeadline() const { return earliest_deadline_; }

  // Removes and returns every queued task (a shutdown that does not drain).
  Batch TakeAll() {
    Batch all;
    all.reserve(size_);
    for (size_t b = 0; b < buckets_.size(); ++b) {
      for (auto& fifo : buckets_[b]) {
        for (Entry& e : fifo) all.push_back(std::move(e.task));
        fifo.clear();
      }
      bucket_count_[b] = 0;
    }
    std::fill(priority_count_.begin(), priority_count_.end(), 0);
    size_ = 0;
    queued_tokens_ = 0;
    earliest_deadline_ = absl::InfiniteFuture();
    return all;
  }

  bool empty() const { return size_ == 0; }
  int size() const { return size_; }
  // The lengths of every queued task, summed.
  int64_t queued_tokens() const { return queued_tokens_; }
  // The batches the queued tasks make at the least: each bucket's tasks in
  // batches of its largest size.
  int64_t fewest_batches() const {
    int64_t batches = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      batches += (bucket_count_[b] + BucketMax(b) - 1) / BucketMax(b);
    }
    return batches;
  }
  // Tasks queued at `priority` (their own level, ageing aside); 0 if out of
  // range.
  int size(int priority) const {
    if (priority < 0 || priority >= options_.priority_levels) return 0;
    return priority_count_[priority];
  }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  int bucket_size(int bucket) const { return bucket_count_[bucket]; }

 private:
  struct Entry {
    std::unique_ptr<TaskT> task;
    absl::Time enqueued;
    absl::Time deadline;
    uint64_t seq;  // arrival order; breaks every ranking tie
    int length;
    int priority;
  };
  enum class Due { kFull, kLate, kPreferred };
  // Smaller ranks first: (effective priority, arrival).
  using Rank = std::pair<int, uint64_t>;

  // Past its deadline first: no need to ask the transport about those.
  static absl::Status DeadStatus(const Entry& e, const TaskT& task,
                                 absl::Time now) {
    if (e.deadline <= now) {
      return absl::DeadlineExceededError(absl::StrCat(
          "deadline passed after ", absl::FormatDuration(now - e.enqueued),
          " in the batch queue; not computed"));
    }
    if (task.cancelled()) {
      return absl::CancelledError("request cancelled while queued");
    }
    return absl::OkStatus();
  }

  // The largest batch of `bucket` (bucket_max_batch_sizes).
  int BucketMax(size_t bucket) const {
    return options_.bucket_max_batch_sizes.empty()
               ? options_.max_batch_size
               : options_.bucket_max_batch_sizes[bucket];
  }

  bool DueBySize(size_t bucket, int n) const {
    return n >= BucketMax(bucket) ||
           (!preferred_.empty() && n >= preferred_.front());
  }

  Rank RankOf(const Entry& e, absl::Time now) const {
    const bool aged = now - e.enqueued >= options_.starvation_age;
    return {aged ? 0 : e.priority, e.seq};
  }

  // The level whose head ranks best in `bucket`, or -1 if it is empty. A
  // level's head always ranks best in its FIFO: it is the oldest, so the
  // first to age.
  int BestLevel(size_t bucket, absl::Time now) const {
    int best = -1;
    Rank best_rank;
    for (int p = 0; p < options_.priority_levels; ++p) {
      const auto& fifo = buckets_[bucket][p];
      if (fifo.empty()) continue;
      const Rank rank = RankOf(fifo.front(), now);
      if (best < 0 || rank < best_rank) {
        best = p;
        best_rank = rank;
      }
    }
    return best;
  }

  absl::Time Oldest(size_t bucket) const {
    absl::Time oldest = absl::InfiniteFuture();
    for (const auto& fifo : buckets_[bucket]) {
      if (!fifo.empty()) oldest = std::min(oldest, fifo.front().enqueued);
    }
    return oldest;
  }

  void Forget(size_t bucket, const Entry& e) {
    --bucket_count_[bucket];
    --priority_count_[e.priority];
    queued_tokens_ -= e.length;
    if (--size_ == 0) earliest_deadline_ = absl::InfiniteFuture();
  }

  // Moves the best ranked live tasks of `bucket` into `batch` until it holds
  // `target` tasks or the bucket is empty.
  void Fill(size_t bucket, size_t target, absl::Time now, Batch& batch,
            std::vector<Dropped>& dropped) {
    while (batch.size() < target) {
      const int level = BestLevel(bucket, now);
      if (level < 0) return;
      auto& fifo = buckets_[bucket][level];
      Entry e = std::move(fifo.front());
      fifo.pop_front();
      Forget(bucket, e);
      absl::Status dead = DeadStatus(e, *e.task, now);
      if (dead.ok()) {
        batch.push_back(std::move(e.task));
      } else {
        dropped.push_back({std::move(e.task), std::move(dead)});
      }
    }
  }

  size_t LargestPreferredAtMost(int n) const {
    auto it = std::upper_bound(preferred_.begin(), preferred_.end(), n);
    return it == preferred_.begin() ? static_cast<size_t>(n)
                                    : static_cast<size_t>(*(it - 1));
  }

  Batch TakeBatchOnce(absl::Time now, bool flush,
                      std::vector<Dropped>& dropped) {
    int anchor = -1;
    Due due = Due::kFull;
    Rank best_rank;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      const int n = bucket_count_[b];
      if (n == 0) continue;
      Due bucket_due;
      if (n >= BucketMax(b)) {
        bucket_due = Due::kFull;
      } else if (flush || Oldest(b) + options_.max_queue_delay <= now) {
        bucket_due = Due::kLate;
      } else if (DueBySize(b, n)) {
        bucket_due = Due::kPreferred;
      } else {
        continue;
      }
      const auto& head = buckets_[b][BestLevel(b, now)].front();
      const Rank rank = RankOf(head, now);
      if (anchor < 0 || rank < best_rank) {
        anchor = static_cast<int>(b);
        due = bucket_due;
        best_rank = rank;
      }
    }
    if (anchor < 0) return {};

    const int most = BucketMax(anchor);
    const size_t target =
        due == Due::kPreferred
            ? LargestPreferredAtMost(std::min(bucket_count_[anchor], most))
            : static_cast<size_t>(most);
    Batch batch;
    batch.reserve(target);
    Fill(anchor, target, now, batch, dropped);
    if (due == Due::kLate) {
      MergeOtherBuckets(anchor, target, now, batch, dropped);
    }
    return batch;
  }

  // How many live tasks Fill() would take from `bucket` with `room` left,
  // and the longest of them, without taking them.
  struct Group {
    int64_t count = 0;
    int64_t longest = 0;
  };
  Group PeekBest(size_t bucket, int64_t room, absl::Time now) const {
    std::vector<size_t> next(options_.priority_levels, 0);
    Group group;
    while (group.count < room) {
      int best = -1;
      Rank best_rank;
      for (int p = 0; p < options_.priority_levels; ++p) {
        const auto& fifo = buckets_[bucket][p];
        if (next[p] >= fifo.size()) continue;
        const Rank rank = RankOf(fifo[next[p]], now);
        if (best < 0 || rank < best_rank) {
          best = p;
          best_rank = rank;
        }
      }
      if (best < 0) break;
      const Entry& e = buckets_[bucket][best][next[best]++];
      if (!DeadStatus(e, *e.task, now).ok()) continue;
      ++group.count;
      group.longest = std::max<int64_t>(group.longest, e.length);
    }
    return group;
  }

  // The late-batch merge rule of the file comment.
  void MergeOtherBuckets(int anchor, size_t target, absl::Time now,
                         Batch& batch, std::vector<Dropped>& dropped) {
    const int buckets = static_cast<int>(buckets_.size());
    size_t limit = target;  // the smallest largest batch of those merged
    for (int distance = 1; distance < buckets; ++distance) {
      for (int b : {anchor - distance, anchor + distance}) {
        if (batch.size() >= limit) return;
        if (b < 0 || b >= buckets || bucket_count_[b] == 0) continue;
        // A batch holding b's tasks stays within b's own largest batch too.
        const int64_t room = std::min<int64_t>(limit, BucketMax(b));
        const int64_t n = static_cast<int64_t>(batch.size());
        if (n >= room) continue;
        const Group group = PeekBest(b, room - n, now);
        if (group.count == 0) continue;
        const int64_t longest = LongestIn(batch);
        const int64_t merged = std::max(longest, group.longest);
        const int64_t extra = (n + group.count) * merged - n * longest -
                              group.count * group.longest;
        if (static_cast<double>(extra) >= options_.merge_cost_tokens) continue;
        Fill(b, batch.size() + group.count, now, batch, dropped);
        limit = static_cast<size_t>(room);
      }
    }
  }

  static int64_t LongestIn(const Batch& batch) {
    int64_t longest = 0;
    for (const auto& task : batch) {
      longest = std::max<int64_t>(longest, task->length());
    }
    return longest;
  }

  const BatchSchedulerOptions options_;
  std::vector<int> preferred_;                           // sorted, unique
  std::vector<std::vector<std::deque<Entry>>> buckets_;  // [bucket][priority]
  std::vector<int> bucket_count_;
  std::vector<int> priority_count_;
  int size_ = 0;
  int64_t queued_tokens_ = 0;
  absl::Time earliest_deadline_ = absl::InfiniteFuture();  // see its getter
  uint64_t next_seq_ = 0;
};

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_TASK_QUEUE_H_
