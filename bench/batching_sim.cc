// Replays a load through the real batching policy (batching::TaskQueue) on a
// simulated clock, with forward times measured from the real model. Policy
// settings can then be compared exactly, free of this VM's drift: the same
// arrivals, the same costs, only the policy differs.
//
//   build/bench/batching_sim --concurrency=64 --load_fractions=0.25,0.5,0.75
//       --merge_costs=0,auto,1000 --delays_us=0,2000 --json=sim.json
//
// Each setting runs closed loop (saturation), then open loop at the given
// fractions of its own saturation throughput; p99 is printed against the
// issue's bound, max_queue_delay + 3 x the mean forward of a batch.
//
// Model of the server: one executor on one core; a batch of n requests
// padded to L tokens takes T(n, L), interpolated from forwards of the real
// runtime over a grid of shapes, plus n x --overhead_us for what the same
// core spends per request outside the forward (gRPC, tokenizing, answering).
// Lengths are drawn from the bundle's golden.jsonl, like fusion-bench's load.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/golden_inputs.h"
#include "server/batching/options.h"
#include "server/batching/task_queue.h"
#include "server/runtime/blas_kernels.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/torch_model_runtime.h"
#include "server/serving/forward_cost.h"

ABSL_FLAG(std::string, bundle, "models/fusion/1", "Model bundle directory");
ABSL_FLAG(int, concurrency, 64, "Closed-loop clients: the saturation load");
ABSL_FLAG(std::string, load_fractions, "0.5",
          "Open-loop Poisson loads as fractions of each setting's closed-loop "
          "throughput");
ABSL_FLAG(std::string, merge_costs, "auto",
          "merge_cost_tokens values; 'auto' is what the server measures");
ABSL_FLAG(std::string, delays_us, "",
          "max_queue_delay values (default: config)");
ABSL_FLAG(std::string, max_batch_sizes, "",
          "max_batch_size values (default: config)");
ABSL_FLAG(std::string, bucket_edges, "",
          "length_bucket_edges sets, ';' between sets, '/' within one, e.g. "
          "'16/32/64/128;8/16/32/64/128' (default: config)");
ABSL_FLAG(int, requests, 20000, "Requests per simulated run");
ABSL_FLAG(double, overhead_us, 100, "Per-request CPU outside the forward");
ABSL_FLAG(int, replay_seconds, 0,
          "Also compute each setting's closed-loop batches for real, this "
          "long, alternating with the raw ceiling's batches (0: off)");
ABSL_FLAG(std::string, json, "", "Write the results here as JSON");

namespace {

using fusion::runtime::ScoringInput;

// Forward time of a batch shape, interpolated over a measured grid.
class CostTable {
 public:
  static CostTable Measure(fusion::runtime::ModelRuntime& runtime,
                           int num_features, int max_batch, int max_tokens) {
    CostTable table;
    for (int n = 1; n < max_batch; n *= 2) table.sizes_.push_back(n);
    table.sizes_.push_back(max_batch);
    for (int l = 4; l < max_tokens; l *= 2) table.lengths_.push_back(l);
    table.lengths_.push_back(max_tokens);
    std::vector<fusion::serving::BatchShape> shapes;
    for (int n : table.sizes_) {
      for (int l : table.lengths_) shapes.push_back({n, l});
    }
    auto seconds =
        fusion::serving::MedianForwardSeconds(runtime, num_features, shapes, 7);
    if (!seconds.ok()) {
      std::cerr << seconds.status() << "\n";
      std::abort();
    }
    table.seconds_ = std::move(*seconds);  // [size][length]
    return table;
  }

  double Seconds(double n, double l) const {
    auto [i, fi] = Locate(sizes_, n);
    auto [j, fj] = Locate(lengths_, l);
    auto at = [&](size_t a, size_t b) {
      return seconds_[a * lengths_.size() + b];
    };
    const size_t i1 = std::min(i + 1, sizes_.size() - 1);
    const size_t j1 = std::min(j + 1, lengths_.size() - 1);
    return (1 - fi) * ((1 - fj) * at(i, j) + fj * at(i, j1)) +
           fi * ((1 - fj) * at(i1, j) + fj * at(i1, j1));
  }

  nlohmann::json ToJson() const {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < sizes_.size(); ++i) {
      for (size_t j = 0; j < lengths_.size(); ++j) {
        rows.push_back({{"batch", sizes_[i]},
                        {"tokens", lengths_[j]},
                        {"ms", 1000 * seconds_[i * lengths_.size() + j]}});
      }
    }
    return rows;
  }

 private:
  // The grid cell left of x and x's fraction of the way to the next one.
  static std::pair<size_t, double> Locate(const std::vector<int>& grid,
                                          double x) {
    if (x <= grid.front()) return {0, 0.0};
    for (size_t k = 0; k + 1 < grid.size(); ++k) {
      if (x <= grid[k + 1]) {
        return {k, (x - grid[k]) / (grid[k + 1] - grid[k])};
      }
    }
    return {grid.size() - 1, 0.0};
  }

  std::vector<int> sizes_, lengths_;
  std::vector<double> seconds_;  // [size][length]
};

struct SimTask {
  int tokens;
  absl::Time arrival;
  int client;  // closed loop: who sends again on completion
  int priority() const { return 0; }
  int length() const { return tokens; }
  absl::Time deadline() const { return absl::InfiniteFuture(); }
  bool cancelled() const { return false; }
  void Fail(const absl::Status&) {}
};

struct Load {
  std::string name;
  double rate = 0;      // open loop, requests/s
  int concurrency = 0;  // closed loop
};

struct Result {
  double throughput = 0, p50_ms = 0, p99_ms = 0, mean_batch = 0;
  double mean_batch_ms = 0, padding_efficiency = 0, busy = 0;
};

// `batch_lengths`, if given, receives the lengths of each counted batch.
Result Simulate(const fusion::batching::BatchSchedulerOptions& options,
                const CostTable& costs, const std::vector<int>& lengths,
                const Load& load, int requests, absl::Duration overhead,
                std::vector<std::vector<int>>* batch_lengths = nullptr) {
  using Queue = fusion::batching::TaskQueue<SimTask>;
  Queue queue(options);
  std::mt19937 rng(11);  // the same arrivals for every policy
  std::uniform_int_distribution<size_t> pick(0, lengths.size() - 1);
  std::exponential_distribution<double> gap(load.rate > 0 ? load.rate : 1);
  const absl::Time t0 = absl::UnixEpoch();
  // Pending sends, earliest first: (time, client).
  using Send = std::pair<absl::Time, int>;
  std::priority_queue<Send, std::vector<Send>, std::greater<Send>> sends;
  if (load.concurrency > 0) {
    for (int c = 0; c < load.concurrency; ++c) sends.push({t0, c});
  } else {
    sends.push({t0, -1});
  }
  int sent = 0, done = 0;
  const int warmup = requests / 10;
  std::vector<double> latencies_ms;
  int64_t batches = 0, batched = 0, real = 0, computed = 0;
  absl::Duration busy;
  absl::Time first_counted = absl::InfiniteFuture(), last_done = t0;
  absl::Time now = t0, free_at = t0;
  std::vector<Queue::Dropped> dropped;

  while (done < requests) {
    while (!sends.empty() && sends.top().first <= now && sent < requests) {
      auto [at, client] = sends.top();
      sends.pop();
      auto task =
          std::make_unique<SimTask>(SimTask{lengths[pick(rng)], at, client});
      if (!queue.Push(task, now).ok()) std::abort();
      ++sent;
      if (client < 0) sends.push({at + absl::Seconds(gap(rng)), -1});
    }
    if (now >= free_at && !queue.empty()) {
      Queue::Batch batch = queue.TakeBatch(now, false, dropped);
      if (!batch.empty()) {
        int longest = 0;
        int64_t tokens = 0;
        for (const auto& t : batch) {
          longest = std::max(longest, t->tokens);
          tokens += t->tokens;
        }
        const double n = static_cast<double>(batch.size());
        const absl::Duration cost =
            absl::Seconds(costs.Seconds(n, longest)) + overhead * n;
        free_at = now + cost;
        for (const auto& t : batch) {
          if (done++ >= warmup) {
            if (first_counted == absl::InfiniteFuture()) first_counted = now;
            latencies_ms.push_back(
                absl::ToDoubleMilliseconds(free_at - t->arrival));
          }
          if (t->client >= 0) sends.push({free_at, t->client});
        }
        if (done > warmup) {
          if (batch_lengths != nullptr) {
            batch_lengths->emplace_back();
            for (const auto& t : batch)
              batch_lengths->back().push_back(t->tokens);
          }
          ++batches;
          batched += batch.size();
          real += tokens;
          computed += static_cast<int64_t>(longest) * batch.size();
          busy += cost;
          last_done = free_at;
        }
        continue;
      }
    }
    absl::Time next = sends.empty() || sent >= requests ? absl::InfiniteFuture()
                                                        : sends.top().first;
    if (free_at > now) {
      next = std::min(next, free_at);
    } else if (!queue.empty()) {
      next = std::min(next, queue.NextDueTime());
    }
    if (next == absl::InfiniteFuture()) break;
    now = std::max(now, next);
  }
  Result r;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto quantile = [&](double q) {
    return latencies_ms[static_cast<size_t>(q * (latencies_ms.size() - 1))];
  };
  const double span = absl::ToDoubleSeconds(last_done - first_counted);
  r.throughput = latencies_ms.size() / span;
  r.p50_ms = quantile(0.5);
  r.p99_ms = quantile(0.99);
  r.mean_batch = static_cast<double>(batched) / batches;
  r.mean_batch_ms = absl::ToDoubleMilliseconds(busy) / batches;
  r.padding_efficiency = static_cast<double>(real) / computed;
  r.busy = absl::ToDoubleSeconds(busy) / span;
  return r;
}

// The batches a policy formed, computed for real, in turn with the raw
// ceiling's length-sorted batches of 32 and with the same requests one at a
// time (no batching): throughputs measured side by side in one process, so
// drift hits all three alike.
struct Replay {
  double policy_items_per_s = 0;
  double raw_items_per_s = 0;
  double unbatched_items_per_s = 0;
};
// 0 .. n-1 in a fixed random order.
std::vector<size_t> ShuffledIndices(size_t n) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(11));
  return order;
}

Replay ReplayAgainstRaw(
    fusion::runtime::ModelRuntime& runtime,
    const std::vector<std::vector<int>>& policy_batches,
    const std::vector<std::vector<const ScoringInput*>>& raw_batches,
    const std::vector<ScoringInput>& golden, absl::Duration budget) {
  std::map<int, const ScoringInput*> by_length;
  for (const ScoringInput& in : golden) {
    by_length.emplace(static_cast<int>(in.token_ids.size()), &in);
  }
  struct Tally {
    absl::Duration time;
    int64_t items = 0;
    double rate() const { return items / absl::ToDoubleSeconds(time); }
  } policy, raw, unbatched;
  auto run = [&runtime](const std::vector<const ScoringInput*>& batch,
                        Tally& tally) {
    const absl::Time start = absl::Now();
    if (!runtime.RunBatch(batch).ok()) std::abort();
    tally.time += absl::Now() - start;
    tally.items += static_cast<int64_t>(batch.size());
  };
  // Both lists in a fixed random order: the budget may end before either is
  // through, and in their own order a prefix is biased (the raw batches are
  // sorted by length, the policy's start with the queue filling up).
  const std::vector<size_t> policy_order =
      ShuffledIndices(policy_batches.size());
  const std::vector<size_t> raw_order = ShuffledIndices(raw_batches.size());
  for (size_t i = 0; policy.time + raw.time + unbatched.time < budget; ++i) {
    std::vector<const ScoringInput*> batch;
    for (int length : policy_batches[policy_order[i % policy_order.size()]]) {
      batch.push_back(by_length.at(length));
    }
    run(batch, policy);
    run(raw_batches[raw_order[i % raw_order.size()]], raw);
    for (const ScoringInput* in : batch) run({in}, unbatched);
  }
  return {policy.rate(), raw.rate(), unbatched.rate()};
}

}  // namespace

int main(int argc, char** argv) {
  fusion::runtime::RestartForBetterBlasKernels(argv);
  absl::ParseCommandLine(argc, argv);
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  auto config = fusion::runtime::LoadBundleConfig(bundle);
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  fusion::runtime::TorchRuntimeOptions runtime_options;
  runtime_options.intra_op_threads = 1;
  fusion::runtime::SetProcessThreads(1, 1);
  auto runtime = fusion::runtime::TorchModelRuntime::Create(bundle, *config,
                                                            runtime_options);
  if (!runtime.ok()) {
    std::cerr << runtime.status() << "\n";
    return 1;
  }
  const auto& b = config->batching();
  std::cerr << "measuring forward times over a grid of shapes...\n";
  const CostTable costs =
      CostTable::Measure(**runtime, config->features_size(), b.max_batch_size(),
                         config->max_tokens());
  fusion::serving::ForwardCostOptions cost_options;
  cost_options.num_features = config->features_size();
  cost_options.max_tokens = config->max_tokens();
  cost_options.max_batch_size = b.max_batch_size();
  auto measured =
      fusion::serving::MeasureMergeCostTokens(**runtime, cost_options);
  if (!measured.ok()) {
    std::cerr << measured.status() << "\n";
    return 1;
  }

  std::vector<double> fractions;
  for (absl::string_view f : absl::StrSplit(absl::GetFlag(FLAGS_load_fractions),
                                            ',', absl::SkipEmpty())) {
    double x = 0;
    if (!absl::SimpleAtod(f, &x) || x <= 0 || x >= 1) {
      std::cerr << "bad load fraction " << f << "\n";
      return 1;
    }
    fractions.push_back(x);
  }
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  std::vector<int64_t> delays;
  for (absl::string_view d :
       absl::StrSplit(absl::GetFlag(FLAGS_delays_us), ',', absl::SkipEmpty())) {
    delays.push_back(std::stoll(std::string(d)));
  }
  if (delays.empty()) delays.push_back(b.max_queue_delay_us());
  std::vector<int> max_batch_sizes;
  for (absl::string_view m : absl::StrSplit(
           absl::GetFlag(FLAGS_max_batch_sizes), ',', absl::SkipEmpty())) {
    int size = 0;
    if (!absl::SimpleAtoi(m, &size) || size < 1 || size > b.max_batch_size()) {
      std::cerr << "max_batch_sizes must lie in [1, " << b.max_batch_size()
                << "] (the cost table's range)\n";
      return 1;
    }
    max_batch_sizes.push_back(size);
  }
  if (max_batch_sizes.empty()) max_batch_sizes.push_back(b.max_batch_size());
  std::vector<std::pair<std::string, double>> merge_costs;
  for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_merge_costs),
                                            ',', absl::SkipEmpty())) {
    merge_costs.push_back(
        {std::string(m), m == "auto" ? *measured : std::stod(std::string(m))});
  }

  std::vector<std::vector<int>> edge_sets;
  for (absl::string_view set : absl::StrSplit(absl::GetFlag(FLAGS_bucket_edges),
                                              ';', absl::SkipEmpty())) {
    std::vector<int> edges;
    for (absl::string_view e : absl::StrSplit(set, '/', absl::SkipEmpty())) {
      int edge = 0;
      if (!absl::SimpleAtoi(e, &edge)) {
        std::cerr << "bad bucket edge " << e << "\n";
        return 1;
      }
      edges.push_back(edge);
    }
    edge_sets.push_back(std::move(edges));
  }
  if (edge_sets.empty()) {
    edge_sets.emplace_back(b.length_bucket_edges().begin(),
                           b.length_bucket_edges().end());
  }

  // Every combination of the settings asked for.
  struct Setting {
    fusion::batching::BatchSchedulerOptions options;
    std::string merge_cost_name;
  };
  std::vector<Setting> settings;
  for (int max_batch_size : max_batch_sizes) {
    for (const auto& [cost_name, cost] : merge_costs) {
      for (int64_t delay : delays) {
        for (const auto& edges : edge_sets) {
          Setting setting{{}, cost_name};
          auto& options = setting.options;
          options.max_batch_size = max_batch_size;
          options.max_queue_delay = absl::Microseconds(delay);
          options.length_bucket_edges = edges;
          options.priority_levels = b.priority_levels();
          options.max_queue_size = 1 << 20;
          options.merge_cost_tokens = cost;
          if (absl::Status valid = fusion::batching::ValidateOptions(options);
              !valid.ok()) {
            std::cerr << valid << "\n";
            return 1;
          }
          settings.push_back(std::move(setting));
        }
      }
    }
  }

  const std::vector<ScoringInput> golden =
      fusion::bench::ReadGoldenInputs(bundle);
  std::vector<int> lengths;
  for (const auto& input : golden) {
    lengths.push_back(static_cast<int>(input.token_ids.size()));
  }
  std::vector<ScoringInput> raw_sample;
  const auto raw_batches =
      fusion::bench::SortedBatches(golden, 4096, 32, raw_sample);
  const absl::Duration replay =
      absl::Seconds(absl::GetFlag(FLAGS_replay_seconds));
  if (lengths.empty()) {
    std::cerr << "no requests in " << bundle << "/golden.jsonl\n";
    return 1;
  }
  const absl::Duration overhead =
      absl::Microseconds(absl::GetFlag(FLAGS_overhead_us));
  nlohmann::json runs = nlohmann::json::array();
  std::cout << "max_batch ";
  std::cout << "merge_cost delay_us load          resp/s  p50 ms  p99 ms  "
               "batch  batch ms  pad eff  busy  p99 bound edges\n";
  for (const Setting& setting : settings) {
    const auto& options = setting.options;
    const std::string edges_name =
        absl::StrJoin(options.length_bucket_edges, "/");
    std::vector<Load> loads = {
        {absl::StrCat("closed_", concurrency), 0, concurrency}};
    for (size_t k = 0; k <= fractions.size(); ++k) {
      const Load load = loads[k];  // a copy: loads grows below
      std::vector<std::vector<int>> closed_batches;
      const Result r = Simulate(
          options, costs, lengths, load, absl::GetFlag(FLAGS_requests),
          overhead,
          k == 0 && replay > absl::ZeroDuration() ? &closed_batches : nullptr);
      nlohmann::json replayed;
      if (!closed_batches.empty()) {
        const Replay rp = ReplayAgainstRaw(**runtime, closed_batches,
                                           raw_batches, golden, replay);
        std::printf(
            "%9s computed for real: policy's batches %.1f items/s "
            "= %.3f x raw ceiling, %.3f x unbatched\n",
            "", rp.policy_items_per_s,
            rp.policy_items_per_s / rp.raw_items_per_s,
            rp.policy_items_per_s / rp.unbatched_items_per_s);
        replayed = {
            {"policy_items_per_s", rp.policy_items_per_s},
            {"raw_items_per_s", rp.raw_items_per_s},
            {"unbatched_items_per_s", rp.unbatched_items_per_s},
            {"policy_over_raw", rp.policy_items_per_s / rp.raw_items_per_s},
            {"policy_over_unbatched",
             rp.policy_items_per_s / rp.unbatched_items_per_s}};
      }
      if (k == 0) {
        for (double f : fractions) {
          loads.push_back({absl::StrCat(f, " x sat"), f * r.throughput, 0});
        }
      }
      const double bound_ms =
          absl::ToDoubleMilliseconds(options.max_queue_delay) +
          3 * r.mean_batch_ms;
      std::printf(
          "%9d %-10s %8lld %-12s %8.1f %7.2f %7.2f %6.1f %9.2f %8.3f "
          "%5.2f %8.2f %s%s\n",
          options.max_batch_size, setting.merge_cost_name.c_str(),
          static_cast<long long>(
              absl::ToInt64Microseconds(options.max_queue_delay)),
          load.name.c_str(), r.throughput, r.p50_ms, r.p99_ms, r.mean_batch,
          r.mean_batch_ms, r.padding_efficiency, r.busy, bound_ms,
          edges_name.c_str(), k > 0 && r.p99_ms <= bound_ms ? " met" : "");
      runs.push_back({{"max_batch_size", options.max_batch_size},
                      {"merge_cost", setting.merge_cost_name},
                      {"length_bucket_edges", options.length_bucket_edges},
                      {"replayed_forward", replayed},
                      {"merge_cost_tokens", options.merge_cost_tokens},
                      {"max_queue_delay_us",
                       absl::ToInt64Microseconds(options.max_queue_delay)},
                      {"load", load.name},
                      {"throughput_rps", r.throughput},
                      {"p50_ms", r.p50_ms},
                      {"p99_ms", r.p99_ms},
                      {"mean_batch_size", r.mean_batch},
                      {"mean_batch_ms", r.mean_batch_ms},
                      {"padding_efficiency", r.padding_efficiency},
                      {"busy", r.busy},
                      {"p99_bound_ms", bound_ms}});
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path)
        << nlohmann::json{{"measured_merge_cost_tokens", *measured},
                          {"overhead_us", absl::GetFlag(FLAGS_overhead_us)},
                          {"cost_table", costs.ToJson()},
                          {"runs", runs}}
               .dump(2)
        << "\n";
  }
  return 0;
}
