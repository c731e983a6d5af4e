#include "client/bench/load_loop.h"

#include <sys/resource.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "absl/time/clock.h"
#include "client/bench/arrivals.h"

namespace fusion::bench {
namespace {

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void SleepUntilNs(int64_t t_ns) {
  const int64_t now = NowNs();
  if (t_ns > now) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(t_ns - now));
  }
}

// Picks requests from the workload; one per thread (gRPC callback threads
// each get their own), seeded from the level's seed.
class Picker {
 public:
  Picker(const Workload& workload, double attention_fraction, uint64_t seed)
      : workload_(workload), fraction_(attention_fraction), seed_(seed) {}

  WorkItem Pick() {
    thread_local std::mt19937_64 rng(
        seed_ + 0x9E3779B97F4A7C15ull * (thread_counter_.fetch_add(1) + 1));
    const size_t i = rng() % workload_.size();
    const bool attention =
        fraction_ > 0 &&
        std::uniform_real_distribution<double>(0, 1)(rng) < fraction_;
    return workload_.Item(i, attention);
  }

 private:
  const Workload& workload_;
  const double fraction_;
  const uint64_t seed_;
  std::atomic<uint64_t> thread_counter_{0};
};

// State shared by the loop thread and the gRPC callback threads.
class Level {
 public:
  Level(const Workload& workload, const LoadSpec& spec, int64_t start_ns)
      : spec_(spec),
        picker_(workload, spec.attention_fraction, spec.seed),
        window_start_ns_(start_ns + absl::ToInt64Nanoseconds(spec.warmup)),
        window_end_ns_(window_start_ns_ +
                       absl::ToInt64Nanoseconds(spec.duration)),
        recorder_(window_start_ns_, window_end_ns_) {}

  void set_sender(std::unique_ptr<Sender> sender) {
    sender_ = std::move(sender);
  }

  void OnOutcome(int slot, const Outcome& outcome) {
    recorder_.Record(outcome);
    if (!spec_.open_loop && !stopping_.load(std::memory_order_acquire) &&
        sender_->Send(picker_.Pick(), NowNs(), slot)) {
      return;  // the slot goes on
    }
    Retire();
  }

  // Closed loop: `concurrency` slots, each re-sent when its outcome lands.
  void RunClosed() {
    for (int slot = 0; slot < spec_.concurrency; ++slot) {
      outstanding_.fetch_add(1);
      if (!sender_->Send(picker_.Pick(), NowNs(), slot)) Retire();
    }
    MeasureWindow();
  }

  // Open loop: Poisson arrivals until the window ends.
  void RunOpen(int64_t start_ns) {
    std::thread measure([this] { MeasureWindow(); });
    PoissonArrivals arrivals(RateSteps(), spec_.seed);
    int64_t intended = start_ns;
    uint64_t sequence = 0;
    while (true) {
      intended += arrivals.NextGapNs();
      if (intended >= window_end_ns_) break;
      SleepUntilNs(intended);
      {
        std::unique_lock<std::mutex> lock(mu_);
        drained_.wait(
            lock, [&] { return outstanding_.load() < spec_.max_outstanding; });
      }
      outstanding_.fetch_add(1);
      const int slot = static_cast<int>(sequence++ & 0x7fffffff);
      if (!sender_->Send(picker_.Pick(), intended, slot)) {
        Outcome failed;
        failed.intended_ns = failed.sent_ns = intended;
        failed.end_ns = NowNs();
        failed.code = absl::StatusCode::kUnavailable;
        recorder_.Record(failed);
        Retire();
      }
    }
    measure.join();
  }

  // Stops new requests and waits for the outstanding ones (or the timeout).
  int64_t Drain() {
    stopping_.store(true, std::memory_order_release);
    std::unique_lock<std::mutex> lock(mu_);
    drained_.wait_for(lock, absl::ToChronoNanoseconds(spec_.drain_timeout),
                      [&] { return outstanding_.load() == 0; });
    return outstanding_.load();
  }

  void Close() { sender_->Close(); }

  LevelResult Result() {
    LevelResult r;
    r.spec = spec_;
    r.stats = recorder_.Summarize();
    r.window_s = (window_end_ns_ - window_start_ns_) / 1e9;
    r.throughput_rps = r.stats.completed_in_window / r.window_s;
    r.ok_rps = r.stats.window_codes.ok() / r.window_s;
    r.client_cpu_s = cpu_end_s_ - cpu_start_s_;
    r.window_start_monotonic_s = window_start_ns_ / 1e9;
    int64_t from = window_start_ns_;
    for (const RatePhase& phase : spec_.rate_profile) {
      const int64_t to = from + absl::ToInt64Nanoseconds(phase.duration);
      PhaseResult p;
      p.phase = phase;
      p.start_s = (from - window_start_ns_) / 1e9;
      p.stats = recorder_.SummarizeSpan(from, to);
      p.ok_rps = p.stats.codes.ok() / absl::ToDoubleSeconds(phase.duration);
      r.phases.push_back(std::move(p));
      from = to;
    }
    if (spec_.timeline_bucket > absl::ZeroDuration()) {
      r.timeline =
          recorder_.Timeline(absl::ToInt64Nanoseconds(spec_.timeline_bucket),
                             spec_.timeline_latencies);
    }
    return r;
  }

 private:
  // The arrival rate from the level's start: one rate, or the profile's
  // (the warmup at its first phase's rate).
  std::vector<PoissonArrivals::Step> RateSteps() const {
    if (spec_.rate_profile.empty()) return {{0, spec_.rate}};
    std::vector<PoissonArrivals::Step> steps;
    int64_t from = absl::ToInt64Nanoseconds(spec_.warmup);  // window start
    for (const RatePhase& phase : spec_.rate_profile) {
      steps.push_back({steps.empty() ? 0 : from, phase.rate});
      from += absl::ToInt64Nanoseconds(phase.duration);
    }
    return steps;
  }

  // One request (or closed-loop slot) is over; wakes the generator waiting
  // at max_outstanding, or Drain.
  void Retire() {
    outstanding_.fetch_sub(1);
    std::lock_guard<std::mutex> lock(mu_);
    drained_.notify_all();
  }

  void MeasureWindow() {
    SleepUntilNs(window_start_ns_);
    cpu_start_s_ = ProcessCpuSeconds();
    SleepUntilNs(window_end_ns_);
    cpu_end_s_ = ProcessCpuSeconds();
    stopping_.store(true, std::memory_order_release);
  }

  const LoadSpec spec_;
  Picker picker_;
  const int64_t window_start_ns_, window_end_ns_;
  Recorder recorder_;
  std::unique_ptr<Sender> sender_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> outstanding_{0};
  std::mutex mu_;
  std::condition_variable drained_;
  double cpu_start_s_ = 0, cpu_end_s_ = 0;
};

}  // namespace

LevelResult RunLevel(const SenderFactory& make_sender, const Workload& workload,
                     const LoadSpec& spec) {
  const int64_t start_ns = NowNs();
  Level level(workload, spec, start_ns);
  const absl::Time deadline = absl::Now() + spec.warmup + spec.duration +
                              spec.drain_timeout + absl::Seconds(5);
  level.set_sender(make_sender(
      [&level](int slot, const Outcome& outcome) {
        level.OnOutcome(slot, outcome);
      },
      deadline));
  if (spec.open_loop) {
    level.RunOpen(start_ns);
  } else {
    level.RunClosed();
  }
  const int64_t unfinished = level.Drain();
  level.Close();
  LevelResult result = level.Result();
  result.unfinished = unfinished;
  return result;
}

}  // namespace fusion::bench
