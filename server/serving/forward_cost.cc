#include "server/serving/forward_cost.h"

#include <algorithm>
#include <vector>

#include "absl/time/clock.h"

namespace fusion::serving {
namespace {

using runtime::ScoringInput;

double Median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

absl::StatusOr<double> MeasureMergeCostTokens(
    runtime::ModelRuntime& runtime, const ForwardCostOptions& options) {
  const int batch = std::min(16, options.max_batch_size);
  if (batch < 2) return 0.0;
  const int short_len = std::min(8, options.max_tokens);
  const int long_len = std::min(32, options.max_tokens);
  const double upper =
      static_cast<double>(options.max_batch_size) * options.max_tokens;
  if (long_len <= short_len) return upper;  // no length to compare

  ScoringInput short_input, long_input;
  short_input.token_ids.assign(short_len, 1);
  long_input.token_ids.assign(long_len, 1);
  short_input.features.assign(options.num_features, 0.0f);
  long_input.features = short_input.features;
  const std::vector<const ScoringInput*> one = {&short_input};
  const std::vector<const ScoringInput*> many_short(batch, &short_input);
  const std::vector<const ScoringInput*> many_long(batch, &long_input);
  const std::vector<const ScoringInput*>* shapes[] = {&one, &many_short,
                                                      &many_long};
  std::vector<double> seconds[3];
  for (int r = 0; r < std::max(1, options.repetitions); ++r) {
    for (int s = 0; s < 3; ++s) {
      const absl::Time start = absl::Now();
      auto outputs = runtime.RunBatch(*shapes[s]);
      if (!outputs.ok()) return outputs.status();
      seconds[s].push_back(absl::ToDoubleSeconds(absl::Now() - start));
    }
  }
  const double t_one = Median(seconds[0]);
  const double t_short = Median(seconds[1]);
  const double t_long = Median(seconds[2]);
  const double per_token = (t_long - t_short) / (batch * (long_len - short_len));
  if (per_token <= 0) return upper;
  const double per_request = (t_short - t_one) / (batch - 1);
  const double fixed = t_one - per_request;
  return std::clamp(fixed / per_token, 0.0, upper);
}

}  // namespace fusion::serving
