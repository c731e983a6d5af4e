// A bundle's golden.jsonl: requests the exporting Python model scored one at
// a time, with its answers. At load the runtime scores them in fp32 (alone
// and in one padded batch) and the loader tokenizes their texts: a bundle
// whose files disagree with its own answers does not serve. A precision
// other than fp32 is checked against them too. No Torch here.
#ifndef FUSION_SERVER_RUNTIME_GOLDEN_FILE_H_
#define FUSION_SERVER_RUNTIME_GOLDEN_FILE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/runtime/model_runtime.h"

namespace fusion::runtime {

inline constexpr char kGoldenFileName[] = "golden.jsonl";

// How far an fp32 forward may stray from the exporter's answers, as the
// end-to-end tests hold served answers: summing in another order (a padded
// batch, another BLAS or device) moves them by about 1e-7 (2e-7 measured
// for models/fusion/1 on CPU), a golden file of another model or a
// retrained one by 1e-2 or more.
inline constexpr double kMaxFp32GoldenDelta = 1e-4;

struct GoldenCase {
  ScoringInput input;                // token_ids and feature_vector
  std::vector<float> probabilities;  // the exporter's fp32 answer
  std::string request_id;            // may be empty
  std::optional<std::string> text;   // what the exporter tokenized, if given
  int line = 0;                      // in the file, from 1
};

// One case per non-empty line. NOT_FOUND: no file; INVALID_ARGUMENT naming
// the path and line: a line that is not JSON or lacks token_ids,
// feature_vector or probabilities (request_id and text are optional).
absl::StatusOr<std::vector<GoldenCase>> ReadGoldenFile(const std::string& path);

// "golden.jsonl line 8 (golden-007)"; without a request_id, no parentheses.
std::string DescribeGoldenCase(const GoldenCase& golden);

// OK iff there is at least one case and every case fits the model: 1 to
// max_tokens token ids, num_features features, num_classes probabilities.
// INVALID_ARGUMENT naming the first case that does not (a case that does
// not fit would be collated past its buffers, or check nothing).
absl::Status CheckGoldenCasesFit(const std::vector<GoldenCase>& cases,
                                 int max_tokens, int num_features,
                                 int num_classes);

// The first case whose probabilities differ from its output by more than
// `tolerance` (or are NaN), as "golden.jsonl line 8 (golden-007): expected
// [0.12, 0.88], got [0.31, 0.69], off by 0.19"; nullopt when every case agrees.
// `outputs` in the order of `cases`; a count that differs is a disagreement
// too.
std::optional<std::string> FirstDisagreement(
    const std::vector<GoldenCase>& cases,
    const std::vector<ScoringOutput>& outputs, double tolerance);

// The largest |output - golden| over every probability of every case;
// `outputs` in the order of `cases`. Infinity when the counts differ or an
// output is NaN.
double MaxProbabilityDelta(const std::vector<GoldenCase>& cases,
                           const std::vector<ScoringOutput>& outputs);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_GOLDEN_FILE_H_
