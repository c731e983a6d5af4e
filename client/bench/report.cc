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
  out["latency_us"] = {{"count", l.count},         {"min", Round(l.min_us)},
                       {"mean", Round(l.mean_us)}, {"p50", Round(l.p50_us)},
                       {"p90", Round(l.p90_us)},   {"p99", Round(l.p99_us)},
                       {"p999", Round(l.p999_us)}, {"max", Round(l.max_us)}};
  out["errors"] = CodesJson(s.window_codes);
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
  return out;
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
