// The bundle's golden requests (golden.jsonl) as model inputs: the same
// requests fusion-bench sends, for the in-process benchmarks.
#ifndef FUSION_BENCH_GOLDEN_INPUTS_H_
#define FUSION_BENCH_GOLDEN_INPUTS_H_

#include <fstream>
#include <nlohmann/json.hpp>
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

}  // namespace fusion::bench

#endif  // FUSION_BENCH_GOLDEN_INPUTS_H_
