// A bundle's golden.jsonl: requests the exporting Python model scored one at
// a time, with its answers. The runtime checks a precision other than fp32
// against them at load. No Torch here.
#ifndef FUSION_SERVER_RUNTIME_GOLDEN_FILE_H_
#define FUSION_SERVER_RUNTIME_GOLDEN_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/runtime/model_runtime.h"

namespace fusion::runtime {

inline constexpr char kGoldenFileName[] = "golden.jsonl";

struct GoldenCase {
  ScoringInput input;                // token_ids and feature_vector
  std::vector<float> probabilities;  // the exporter's fp32 answer
};

// One case per non-empty line. NOT_FOUND: no file; INVALID_ARGUMENT: a line
// that is not JSON or lacks token_ids, feature_vector or probabilities.
absl::StatusOr<std::vector<GoldenCase>> ReadGoldenFile(const std::string& path);

// OK iff there is at least one case and every case fits the model: 1 to
// max_tokens token ids, num_features features, num_classes probabilities.
// INVALID_ARGUMENT naming the first case that does not (a case that does
// not fit would be collated past its buffers, or check nothing).
absl::Status CheckGoldenCasesFit(const std::vector<GoldenCase>& cases,
                                 int max_tokens, int num_features,
                                 int num_classes);

// The largest |output - golden| over every probability of every case;
// `outputs` in the order of `cases`. Infinity when the counts differ or an
// output is NaN.
double MaxProbabilityDelta(const std::vector<GoldenCase>& cases,
                           const std::vector<ScoringOutput>& outputs);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_GOLDEN_FILE_H_
