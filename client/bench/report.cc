#include "client/bench/report.h"

#include <cmath>

namespace fusion::bench {
namespace {

using nlohmann::json;

// `v` rounded to `digits` decimals (divides by a power of ten, so the JSON
// shows 0.0895 rather than 0.08950000000000001).
double Round(double v, int digits = 2) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

json CodesJson(const client::StatusCounts& counts) {
  json out = json::object();
  for (const auto& [name, n] : counts.ErrorsByName()) out[name] = n;
  return out;
}

// Every code, OK included.
json AllCodesJson(const client::StatusCounts& counts) {
  json out = CodesJson(counts);
  if (counts.ok() > 0) out["OK"] = counts.ok();
  return out;
}

json LatencyJson(const client::LatencySummary& l) {
  return {{"count", l.count},         {"min", Round(l.min_us)},
          {"mean", Round(l.mean_us)}, {"p50", Round(l.p50_us)},
          {"p90", Round(l.p90_us)},   {"p99", Round(l.p99_us)},
          {"p999", Round(l.p999_us)}, {"max", Round(l.max_us)}};
}

json ByCodeJson(const std::map<std::string, CodeLatency>& by_code) {
  json out = json::object();
  for (const auto& [name, entry] : by_code) {
    out[name] = {{"count", entry.latency.count},
                 {"latency_us", LatencyJson(entry.latency)},
                 {"service_us", LatencyJson(entry.service)}};
  }
  return out;
}

json PhasesJson(const std::vector<PhaseResult>& phases) {
  json out = json::array();
  for (const PhaseResult& p : phases) {
    out.push_back({{"rate", p.phase.rate},
                   {"start_s", Round(p.start_s, 3)},
                   {"duration_s", absl::ToDoubleSeconds(p.phase.duration)},
                   {"requests", p.stats.codes.total()},
                   {"ok_rps", Round(p.ok_rps)},
                   {"codes", AllCodesJson(p.stats.codes)},
                   {"latency_us", LatencyJson(p.stats.latency)},
                   {"by_code", ByCodeJson(p.stats.by_code)}});
  }
  return out;
}

json TimelineJson(const std::vector<TimelinePoint>& timeline) {
  json out = json::array();
  for (const TimelinePoint& t : timeline) {
    const bool any_ok = t.ok_latency.count > 0;
    auto ok_us = [&](double v) -> json {
      return any_ok ? json(Round(v)) : json(nullptr);
    };
    out.push_back({{"t_s", Round(t.t_s, 3)},
                   {"requests", t.codes.total()},
                   {"codes", AllCodesJson(t.codes)},
                   {"ok_p50_us", ok_us(t.ok_latency.p50_us)},
                   {"ok_p99_us", ok_us(t.ok_latency.p99_us)},
                   {"ok_max_us", ok_us(t.ok_latency.max_us)}});
    if (!t.ok_latencies_us.empty()) {
      out.back()["ok_latencies_us"] = t.ok_latencies_us;
    }
  }
  return out;
}

json TotalsJson(const client::StatusCounts& counts) {
  return {{"requests", counts.total()},
          {"ok", counts.ok()},
          {"errors", CodesJson(counts)}};
}

constexpr char kNoV2Timing[] =
    "not available: v2 responses carry no per-request timing, so the v2 runs' "
    "server values are null; latency_us is measured by the client";

// Native responses carry the server's timing; v2 responses do not.
bool HasServerTiming(const LevelResult& r) { return r.protocol != "v2"; }

json LevelJson(const LevelResult& r) {
  const bool server_timing = HasServerTiming(r);
  const LevelStats& s = r.stats;
  const client::LatencySummary& l = s.latency;
  json out;
  if (r.spec.open_loop) {
    out["rate"] = r.spec.rate;
  } else {
    out["concurrency"] = r.spec.concurrency;
  }
  out["window_s"] = Round(r.window_s, 3);
  out["completed"] = s.completed_in_window;
  out["throughput_rps"] = Round(r.throughput_rps);
  out["ok_rps"] = Round(r.ok_rps);
  out["latency_us"] = LatencyJson(l);
  out["errors"] = CodesJson(s.window_codes);
  out["by_code"] = ByCodeJson(s.by_code);
  if (server_timing) {
    out["server"] = {{"mean_batch_size", Round(s.mean_batch_size)},
                     {"mean_queue_us", Round(s.mean_queue_us)},
                     {"mean_compute_us", Round(s.mean_compute_us)},
                     {"mean_total_us", Round(s.mean_server_total_us)}};
  } else {
    out["server"] = {{"mean_batch_size", nullptr},
                     {"mean_queue_us", nullptr},
                     {"mean_compute_us", nullptr},
                     {"mean_total_us", nullptr}};
  }
  out["client"] = {
      {"cpu_seconds", Round(r.client_cpu_s, 3)},
      {"cpu_cores", Round(r.window_s > 0 ? r.client_cpu_s / r.window_s : 0, 3)},
      {"cores_per_1k_rps", Round(ClientCoresPer1kRps(r), 4)},
      {"mean_send_lag_us", Round(s.mean_send_lag_us)},
      {"max_send_lag_us", Round(s.max_send_lag_us)}};
  out["totals"] = TotalsJson(s.all_codes);
  out["unfinished"] = r.unfinished;
  out["protocol"] = r.protocol;
  out["window_start_monotonic_s"] = Round(r.window_start_monotonic_s, 6);
  if (!r.phases.empty()) out["phases"] = PhasesJson(r.phases);
  if (!r.timeline.empty()) out["timeline"] = TimelineJson(r.timeline);
  return out;
}

// A rate profile's phases: what was answered OK and how fast, and what was
// refused (RESOURCE_EXHAUSTED) and how fast.
void PrintPhases(std::FILE* out, const LevelResult& r) {
  if (r.phases.empty()) return;
  std::fprintf(
      out,
      "phases (%s; refuse p99: from the hand-over to gRPC to the "
      "RESOURCE_EXHAUSTED answer):\n%9s %9s %9s %9s %9s %9s %13s  %s\n",
      r.protocol.c_str(), "start s", "rate/s", "ok/s", "ok p50 ms", "ok p99 ms",
      "refused", "refuse p99 ms", "other errors");
  const std::string refused =
      absl::StatusCodeToString(absl::StatusCode::kResourceExhausted);
  for (const PhaseResult& p : r.phases) {
    const auto ok = p.stats.by_code.find("OK");
    const auto no = p.stats.by_code.find(refused);
    const client::LatencySummary none;
    const client::LatencySummary& ok_l =
        ok == p.stats.by_code.end() ? none : ok->second.latency;
    const client::LatencySummary& no_l =
        no == p.stats.by_code.end() ? none : no->second.service;
    client::StatusCounts others = p.stats.codes;
    others.Add(absl::StatusCode::kResourceExhausted, -no_l.count);
    std::fprintf(out, "%9.1f %9.0f %9.1f %9.2f %9.2f %9lld %13.2f  %s\n",
                 p.start_s, p.phase.rate, p.ok_rps, ok_l.p50_us / 1e3,
                 ok_l.p99_us / 1e3, static_cast<long long>(no_l.count),
                 no_l.p99_us / 1e3, others.ErrorsToString().c_str());
  }
  std::fprintf(out, "\n");
}

}  // namespace

double ClientCoresPer1kRps(const LevelResult& r) {
  if (r.window_s <= 0 || r.throughput_rps <= 0) return 0;
  return (r.client_cpu_s / r.window_s) / (r.throughput_rps / 1000.0);
}

json ReportJson(const BenchConfig& c, const std::vector<LevelResult>& levels) {
  json runs = json::array();
  client::StatusCounts totals;
  bool any_v2 = false;
  for (const LevelResult& r : levels) {
    runs.push_back(LevelJson(r));
    totals.Merge(r.stats.all_codes);
    any_v2 |= !HasServerTiming(r);
  }
  json config = {{"target", c.target},
                 {"lb", c.lb},
                 {"model", c.model},
                 {"mode", c.mode},
                 {"protocol", c.protocol},
                 {"loop", c.open_loop ? "open" : "closed"},
                 {"workload", c.workload},
                 {"warmup_s", c.warmup_s},
                 {"duration_s", c.duration_s},
                 {"attention_fraction", c.attention_fraction},
                 {"channels", c.channels}};
  if (c.mode == "stream") config["streams"] = c.streams;
  if (!c.rate_profile.empty()) config["rate_profile"] = c.rate_profile;
  if (c.timeline_s > 0) config["timeline_s"] = c.timeline_s;
  if (any_v2 || c.protocol != "native") {
    config["v2_contents"] = c.v2_raw ? "raw" : "typed";
    config["server_timing"] = kNoV2Timing;
  }
  return {{"config", config}, {"runs", runs}, {"totals", TotalsJson(totals)}};
}

void PrintTable(std::FILE* out, const BenchConfig& c,
                const std::vector<LevelResult>& levels) {
  std::fprintf(out,
               "fusion-bench  target %s%s  %s %s, %s loop  warmup %.1fs, "
               "window %.1fs  workload %s  attention %.0f%%\n\n",
               c.target.c_str(),
               c.lb.empty() ? "" : (" (" + c.lb + ")").c_str(),
               (c.protocol + (c.v2_raw ? " (raw v2 contents)" : "")).c_str(),
               c.mode.c_str(), c.open_loop ? "open" : "closed", c.warmup_s,
               c.duration_s, c.workload.c_str(), c.attention_fraction * 100);
  bool any_v2 = false;
  std::fprintf(out, "%12s %8s %10s %9s %9s %9s %9s %9s %8s %6s %9s %9s %8s\n",
               c.open_loop ? "rate/s" : "concurrency", "protocol", "resp/s",
               "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors",
               "batch", "queue us", "comp. us", "cli cpu");
  for (const LevelResult& r : levels) {
    const client::LatencySummary& l = r.stats.latency;
    char level[32];
    if (r.spec.open_loop) {
      std::snprintf(level, sizeof(level), "%.0f", r.spec.rate);
    } else {
      std::snprintf(level, sizeof(level), "%d", r.spec.concurrency);
    }
    char server[64];
    any_v2 |= !HasServerTiming(r);
    if (HasServerTiming(r)) {
      std::snprintf(server, sizeof(server), "%6.1f %9.0f %9.0f",
                    r.stats.mean_batch_size, r.stats.mean_queue_us,
                    r.stats.mean_compute_us);
    } else {
      std::snprintf(server, sizeof(server), "%6s %9s %9s", "-", "-", "-");
    }
    std::fprintf(
        out, "%12s %8s %10.1f %9.2f %9.2f %9.2f %9.2f %9.2f %8lld %s %7.0f%%\n",
        level, r.protocol.c_str(), r.throughput_rps, l.p50_us / 1e3,
        l.p90_us / 1e3, l.p99_us / 1e3, l.p999_us / 1e3, l.max_us / 1e3,
        static_cast<long long>(r.stats.window_codes.errors()), server,
        r.window_s > 0 ? 100 * r.client_cpu_s / r.window_s : 0.0);
  }
  std::fprintf(out, "\n");
  for (const LevelResult& r : levels) {
    if (r.stats.window_codes.errors() > 0 || r.unfinished > 0) {
      std::fprintf(out, "errors at %s %g (%s): %s%s\n",
                   r.spec.open_loop ? "rate" : "concurrency",
                   r.spec.open_loop ? r.spec.rate : r.spec.concurrency,
                   r.protocol.c_str(),
                   r.stats.window_codes.ErrorsToString().c_str(),
                   r.unfinished > 0 ? " (some requests never finished)" : "");
    }
  }
  for (const LevelResult& r : levels) PrintPhases(out, r);
  std::fprintf(out,
               "latency: from the intended send time to the response; batch, "
               "queue and compute: server-side means over OK responses%s;\n"
               "cli cpu: this generator's CPU during the window (100%% = one "
               "core)",
               any_v2 ? " (v2 responses carry none: -)" : "");
  if (!levels.empty()) {
    std::fprintf(out, ", %.3f cores per 1000 resp/s at the last level",
                 ClientCoresPer1kRps(levels.back()));
  }
  std::fprintf(out, ".\n");
}

}  // namespace fusion::bench
