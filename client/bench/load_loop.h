// One load level of fusion-bench: a closed loop (N requests always
// outstanding) or an open loop (Poisson arrivals at R/s, latency counted
// from each request's intended send time, so a slow server cannot hide
// queueing by slowing the generator down).
//
// Timeline: warmup, then the measurement window (`duration`), then a drain
// during which no new request starts. Stats cover requests intended inside
// the window; RunLevel blocks until the level has drained.
//
// An open loop may follow a rate profile instead of one rate (e.g. a steady
// rate, a burst at ten times it, the steady rate again): the window is then
// its phases back to back, the warmup runs at the first phase's rate, and
// each phase is also summarised on its own. A timeline cuts the window into
// equal slices (e.g. the p99 of every 100 ms, to see a recovery).
#ifndef FUSION_CLIENT_BENCH_LOAD_LOOP_H_
#define FUSION_CLIENT_BENCH_LOAD_LOOP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/bench/arrivals.h"
#include "client/bench/recorder.h"
#include "client/bench/senders.h"
#include "client/bench/workload.h"

namespace fusion::bench {

struct LoadSpec {
  bool open_loop = false;
  int concurrency = 1;  // closed loop
  double rate = 0;      // open loop, requests/s
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(5);
  // The most time to wait for outstanding requests after the window.
  absl::Duration drain_timeout = absl::Seconds(15);
  // Open loop: when this many requests are outstanding, the generator waits
  // (their latency still counts from the intended time).
  int max_outstanding = 20000;
  double attention_fraction = 0;  // share of requests asking for attention
  uint64_t seed = 1;
  // Open loop: when not empty, the rates of the window's phases; `rate` is
  // then the first phase's and `duration` the sum of theirs.
  std::vector<RatePhase> rate_profile;
  // > 0: also summarise the window in slices this long (with each slice's
  // OK latencies when timeline_latencies).
  absl::Duration timeline_bucket = absl::ZeroDuration();
  bool timeline_latencies = false;
};

// One phase of a rate profile, summarised.
struct PhaseResult {
  RatePhase phase;
  double start_s = 0;  // from the window's start
  SpanStats stats;
  double ok_rps = 0;  // OK responses intended in the phase, per s
};

struct LevelResult {
  LoadSpec spec;
  std::string protocol = "native";  // "native" | "v2": how it was sent
  LevelStats stats;
  double window_s = 0;
  double throughput_rps = 0;  // responses (any status) that arrived in window
  double ok_rps = 0;          // OK responses intended in the window, per s
  // CPU time (user + system) of this whole process during the window.
  double client_cpu_s = 0;
  int64_t unfinished = 0;  // outstanding when the drain timed out
  // The window's start on the steady clock (CLOCK_MONOTONIC on Linux, the
  // clock of other processes' time.monotonic()), to line up other samples.
  double window_start_monotonic_s = 0;
  std::vector<PhaseResult> phases;      // with a rate profile
  std::vector<TimelinePoint> timeline;  // with a timeline bucket
};

// Makes the sender for a level; the handler must receive every outcome.
using SenderFactory = std::function<std::unique_ptr<Sender>(
    OutcomeHandler handler, absl::Time deadline)>;

LevelResult RunLevel(const SenderFactory& make_sender, const Workload& workload,
                     const LoadSpec& spec);

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_LOAD_LOOP_H_
