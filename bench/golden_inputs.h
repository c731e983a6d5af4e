// The bundle's golden requests (golden.jsonl) as model inputs: the same
// requests fusion-bench sends, for the in-process benchmarks.
#ifndef FUSION_BENCH_GOLDEN_INPUTS_H_
#define FUSION_BENCH_GOLDEN_INPUTS_H_

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "server/runtime/model_runtime.h"

namespace fusion::bench {

// Every request of `<bundle>/golden.jsonl`; empty if the file is missing.
inline std::vector<runtime::ScoringInput> ReadGoldenInputs(
    const std::string& bundle) {
  std::ifstream in(bundle + "/golden.jsonl");
  std::vector<runtime::ScoringInput> golden;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto json = nlohmann::json::parse(line);
    runtime::ScoringInput input;
    input.token_ids = json["token_ids"].get<std::vector<int32_t>>();
    input.features = json["feature_vector"].get<std::vector<float>>();
    golden.push_back(std::move(input));
  }
  return golden;
}

// `count` requests drawn from `golden` (fixed seed), sorted by length, then
// cut into batches of `batch_size` that pad very little: the in-process
// ceiling the served throughput is compared with. The batches point into
// `sample`, which the caller keeps.
inline std::vector<std::vector<const runtime::ScoringInput*>> SortedBatches(
    const std::vector<runtime::ScoringInput>& golden, int count, int batch_size,
    std::vector<runtime::ScoringInput>& sample) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, golden.size() - 1);
  sample.clear();
  for (int i = 0; i < count; ++i) sample.push_back(golden[pick(rng)]);
  std::sort(sample.begin(), sample.end(), [](const auto& a, const auto& b) {
    return a.token_ids.size() < b.token_ids.size();
  });
  std::vector<std::vector<const runtime::ScoringInput*>> batches;
  for (size_t start = 0; start + batch_size <= sample.size();
       start += batch_size) {
    std::vector<const runtime::ScoringInput*> batch;
    for (int i = 0; i < batch_size; ++i) batch.push_back(&sample[start + i]);
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace fusion::bench

#endif  // FUSION_BENCH_GOLDEN_INPUTS_H_
