// Raw in-process forward throughput of a bundle: the ceiling the served
// throughput is compared with. Requests are drawn from golden.jsonl (the
// same inputs fusion-bench sends), sorted by length and cut into batches so
// padding is near zero. Prints a line per setting and writes JSON.
//
// Several precisions and batch sizes are alternated round by round (this
// VM's speed drifts), and each is also given as a ratio to fp32's
// throughput in the same round when fp32 is among them.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "bench/golden_inputs.h"
#include "server/runtime/blas_kernels.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/cpu_budget.h"
#include "server/runtime/precision.h"
#include "server/runtime/torch_model_runtime.h"

ABSL_FLAG(std::string, bundle, "models/fusion/1", "Model bundle directory");
ABSL_FLAG(std::string, batch_size, "32",
          "Comma-separated requests per forward to try");
ABSL_FLAG(std::string, threads, "1",
          "Comma-separated intra-op thread counts to try (one process may set "
          "the count several times; inter-op is 1)");
ABSL_FLAG(std::string, precision, "fp32",
          "Comma-separated precisions to try: fp32, bf16, auto (bf16 from "
          "the size measured at load)");
ABSL_FLAG(double, seconds, 5, "Measured time per setting (all rounds)");
ABSL_FLAG(int, rounds, 1,
          "Rounds over the batch sizes and precisions of a thread count; the "
          "median round counts");
ABSL_FLAG(int, requests, 4096, "Requests sampled from golden.jsonl");
ABSL_FLAG(std::string, json, "", "Write the figures here as JSON");

using fusion::runtime::ScoringInput;
using Batches = std::vector<std::vector<const ScoringInput*>>;

namespace {

std::vector<int> ParseInts(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    values.push_back(std::stoi(std::string(part)));
  }
  return values;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Items per second over `seconds` of forwards, cycling through `batches`.
double Throughput(fusion::runtime::ModelRuntime& runtime,
                  const Batches& batches, double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto budget = std::chrono::duration<double>(seconds);
  int64_t items = 0;
  size_t next = 0;
  const auto start = Clock::now();
  while (Clock::now() - start < budget) {
    auto outputs = runtime.RunBatch(batches[next]);
    if (!outputs.ok()) {
      std::cerr << outputs.status() << "\n";
      std::exit(1);
    }
    items += batches[next].size();
    next = (next + 1) % batches.size();
  }
  return items / std::chrono::duration<double>(Clock::now() - start).count();
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
  std::vector<fusion::runtime::Precision> precisions;
  std::vector<std::string> precision_names;
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_precision), ',')) {
    auto precision = fusion::runtime::ParsePrecision(name);
    if (!precision.ok()) {
      std::cerr << "--" << precision.status().message() << "\n";
      return 1;
    }
    precisions.push_back(*precision);
    precision_names.emplace_back(name);
  }
  const std::vector<int> batch_sizes =
      ParseInts(absl::GetFlag(FLAGS_batch_size));
  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  const double seconds = absl::GetFlag(FLAGS_seconds) / rounds;
  const auto golden = fusion::bench::ReadGoldenInputs(bundle);
  std::map<int, std::vector<ScoringInput>> samples;
  std::map<int, Batches> batches;
  std::map<int, double> padding_efficiency;
  for (int size : batch_sizes) {
    batches[size] = fusion::bench::SortedBatches(
        golden, absl::GetFlag(FLAGS_requests), size, samples[size]);
    int64_t real = 0, computed = 0;
    for (const auto& batch : batches[size]) {
      for (const ScoringInput* in : batch) real += in->token_ids.size();
      computed += batch.back()->token_ids.size() * batch.size();
    }
    padding_efficiency[size] = static_cast<double>(real) / computed;
  }
  const size_t fp32 = std::find(precisions.begin(), precisions.end(),
                                fusion::v1::RuntimeConfig::PRECISION_FP32) -
                      precisions.begin();

  nlohmann::json results = nlohmann::json::array();
  for (int threads : ParseInts(absl::GetFlag(FLAGS_threads))) {
    fusion::runtime::TorchRuntimeOptions options;
    options.device = fusion::runtime::DevicePreference::kAuto;
    options.intra_op_threads = threads;
    fusion::runtime::SetProcessThreads(threads, 1);
    std::vector<std::unique_ptr<fusion::runtime::TorchModelRuntime>> runtimes;
    for (auto precision : precisions) {
      options.precision = precision;
      auto runtime =
          fusion::runtime::TorchModelRuntime::Create(bundle, *config, options);
      if (!runtime.ok()) {
        std::cerr << runtime.status() << "\n";
        return 1;
      }
      runtimes.push_back(std::move(*runtime));
    }
    // [batch size][precision]: items/s and the ratio to fp32, per round.
    std::map<int, std::vector<std::vector<double>>> rates, ratios;
    for (int round = 0; round < rounds; ++round) {
      for (int size : batch_sizes) {
        rates[size].resize(precisions.size());
        ratios[size].resize(precisions.size());
        std::vector<double> rate(precisions.size());
        // Who goes first rotates, so no precision always follows another.
        for (size_t k = 0; k < precisions.size(); ++k) {
          const size_t p = (k + round) % precisions.size();
          rate[p] = Throughput(*runtimes[p], batches[size], seconds);
        }
        for (size_t p = 0; p < precisions.size(); ++p) {
          rates[size][p].push_back(rate[p]);
          if (fp32 < precisions.size()) {
            ratios[size][p].push_back(rate[p] / rate[fp32]);
          }
        }
      }
    }
    for (int size : batch_sizes) {
      for (size_t p = 0; p < precisions.size(); ++p) {
        const auto& runtime = *runtimes[p];
        const double throughput = Median(rates[size][p]);
        const fusion::runtime::PrecisionPlan plan = runtime.precision();
        std::cout << "device=" << runtime.device() << " batch=" << size
                  << " intra_op_threads=" << threads
                  << " precision=" << precision_names[p] << " ("
                  << fusion::runtime::DescribePrecision(plan) << ")"
                  << " items/s=" << throughput
                  << " ms/batch=" << 1000.0 * size / throughput;
        nlohmann::json entry = {
            {"device", runtime.device()},
            {"batch_size", size},
            {"intra_op_threads", threads},
            {"usable_cpus", fusion::runtime::UsableCpuCount()},
            {"blas_kernels",
             fusion::runtime::LoadedOpenBlasCore().value_or("none")},
            {"precision", precision_names[p]},
            {"runs_as", fusion::runtime::DescribePrecision(plan)},
            {"bf16_min_positions", plan.bf16_min_positions},
            {"items_per_second", throughput},
            {"items_per_second_rounds", rates[size][p]},
            {"ms_per_batch", 1000.0 * size / throughput},
            {"padding_efficiency", padding_efficiency[size]},
            {"rounds", rounds}};
        if (fp32 < precisions.size()) {
          entry["vs_fp32_same_round"] = Median(ratios[size][p]);
          std::cout << " vs_fp32=" << Median(ratios[size][p]);
        }
        std::cout << " padding_efficiency=" << padding_efficiency[size] << "\n";
        results.push_back(entry);
      }
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path) << results.dump(2) << "\n";
  }
  return 0;
}
