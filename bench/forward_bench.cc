// Raw in-process forward throughput of a bundle: the ceiling the served
// throughput is compared with. Requests are drawn from golden.jsonl (the
// same inputs fusion-bench sends), sorted by length and cut into batches so
// padding is near zero. Prints a line per setting and writes JSON.
#include <chrono>
#include <fstream>
#include <iostream>
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
#include "server/runtime/torch_model_runtime.h"

ABSL_FLAG(std::string, bundle, "models/fusion/1", "Model bundle directory");
ABSL_FLAG(int, batch_size, 32, "Requests per forward");
ABSL_FLAG(std::string, threads, "1",
          "Comma-separated intra-op thread counts to try (one process may set "
          "the count several times; inter-op is 1)");
ABSL_FLAG(double, seconds, 5, "Measured time per setting");
ABSL_FLAG(int, requests, 4096, "Requests sampled from golden.jsonl");
ABSL_FLAG(std::string, json, "", "Write the figures here as JSON");

using fusion::runtime::ScoringInput;

int main(int argc, char** argv) {
  fusion::runtime::RestartForBetterBlasKernels(argv);
  absl::ParseCommandLine(argc, argv);
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  auto config = fusion::runtime::LoadBundleConfig(bundle);
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  const int batch_size = absl::GetFlag(FLAGS_batch_size);
  std::vector<ScoringInput> sample;
  const auto batches = fusion::bench::SortedBatches(
      fusion::bench::ReadGoldenInputs(bundle), absl::GetFlag(FLAGS_requests),
      batch_size, sample);
  int64_t real = 0, computed = 0;
  for (const auto& batch : batches) {
    for (const ScoringInput* in : batch) real += in->token_ids.size();
    computed += batch.back()->token_ids.size() * batch.size();
  }

  nlohmann::json results = nlohmann::json::array();
  for (const auto& threads_text :
       absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    fusion::runtime::TorchRuntimeOptions options;
    options.device = fusion::runtime::DevicePreference::kAuto;
    options.intra_op_threads = std::stoi(std::string(threads_text));
    options.interop_threads = 1;
    auto runtime =
        fusion::runtime::TorchModelRuntime::Create(bundle, *config, options);
    if (!runtime.ok()) {
      std::cerr << runtime.status() << "\n";
      return 1;
    }
    using Clock = std::chrono::steady_clock;
    const auto budget = std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds));
    int64_t items = 0;
    size_t next = 0;
    const auto start = Clock::now();
    while (Clock::now() - start < budget) {
      auto outputs = (*runtime)->RunBatch(batches[next]);
      if (!outputs.ok()) {
        std::cerr << outputs.status() << "\n";
        return 1;
      }
      items += batch_size;
      next = (next + 1) % batches.size();
    }
    const double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    const double throughput = items / seconds;
    std::cout << "device=" << (*runtime)->device() << " batch=" << batch_size
              << " intra_op_threads=" << options.intra_op_threads
              << " items/s=" << throughput
              << " ms/batch=" << 1000.0 * seconds / (items / batch_size)
              << " padding_efficiency=" << static_cast<double>(real) / computed
              << "\n";
    results.push_back({{"device", (*runtime)->device()},
                       {"batch_size", batch_size},
                       {"intra_op_threads", options.intra_op_threads},
                       {"usable_cpus", fusion::runtime::UsableCpuCount()},
                       {"items_per_second", throughput},
                       {"ms_per_batch", 1000.0 * seconds / (items / batch_size)},
                       {"padding_efficiency",
                        static_cast<double>(real) / computed}});
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path) << results.dump(2) << "\n";
  }
  return 0;
}
