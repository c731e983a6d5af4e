#include "server/serving/forward_cost.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/time/clock.h"

namespace fusion::serving {

absl::StatusOr<std::vector<double>> MedianForwardSeconds(
    runtime::ModelRuntime& runtime, int num_features,
    const std::vector<BatchShape>& shapes, int repetitions) {
  std::vector<runtime::ScoringInput> inputs(shapes.size());
  std::vector<std::vector<const runtime::ScoringInput*>> batches;
  for (size_t s = 0; s < shapes.size(); ++s) {
    inputs[s].token_ids.assign(shapes[s].tokens, 1);
    inputs[s].features.assign(num_features, 0.0f);
    batches.emplace_back(shapes[s].batch, &inputs[s]);
  }
  std::vector<std::vector<double>> samples(shapes.size());
  for (int r = 0; r < std::max(1, repetitions); ++r) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      const absl::Time start = absl::Now();
      auto outputs = runtime.RunBatch(batches[s]);
      if (!outputs.ok()) return outputs.status();
      samples[s].push_back(absl::ToDoubleSeconds(absl::Now() - start));
    }
  }
  std::vector<double> medians;
  for (auto& shape : samples) {
    std::sort(shape.begin(), shape.end());
    medians.push_back(shape[shape.size() / 2]);
  }
  return medians;
}

absl::StatusOr<double> MeasureMergeCostTokens(
    runtime::ModelRuntime& runtime, const ForwardCostOptions& options) {
  const int batch = std::min(16, options.max_batch_size);
  if (batch < 2) return 0.0;
  const int short_len = std::min(8, options.max_tokens);
  const int long_len = std::min(32, options.max_tokens);
  const double upper =
      static_cast<double>(options.max_batch_size) * options.max_tokens;
  if (long_len <= short_len) return upper;  // no length to compare

  auto seconds = MedianForwardSeconds(
      runtime, options.num_features,
      {{1, short_len}, {batch, short_len}, {batch, long_len}},
      options.repetitions);
  if (!seconds.ok()) return seconds.status();
  const double t_one = (*seconds)[0];
  const double t_short = (*seconds)[1];
  const double t_long = (*seconds)[2];
  const double per_token =
      (t_long - t_short) / (batch * (long_len - short_len));
  if (per_token <= 0) return upper;
  const double per_request = (t_short - t_one) / (batch - 1);
  const double fixed = t_one - per_request;
  return std::clamp(fixed / per_token, 0.0, upper);
}

absl::StatusOr<std::vector<int>> MeasureBucketBatchCaps(
    runtime::ModelRuntime& runtime, const ForwardCostOptions& options,
    const std::vector<int>& length_bucket_edges) {
  constexpr double kWithinBest = 0.95;  // the smallest size this close wins
  std::vector<int> sizes;
  for (int64_t size = 1; size < options.max_batch_size; size *= 2) {
    sizes.push_back(static_cast<int>(size));  // 64-bit: no overflow at 2^30
  }
  sizes.push_back(options.max_batch_size);
  std::vector<int> lengths;
  for (int edge : length_bucket_edges) {
    lengths.push_back(std::min(edge, options.max_tokens));
  }
  lengths.push_back(options.max_tokens);

  std::vector<int> caps;
  for (size_t b = 0; b < lengths.size(); ++b) {
    const int length = lengths[b];
    // Buckets past max_tokens (e.g. the one after an edge at max_tokens)
    // hold no row the model accepts: the same cap, not measured again.
    if (b > 0 && length == lengths[b - 1]) {
      caps.push_back(caps.back());
      continue;
    }
    std::vector<BatchShape> shapes;
    for (int size : sizes) shapes.push_back({size, length});
    auto seconds = MedianForwardSeconds(runtime, options.num_features, shapes,
                                        options.repetitions);
    if (!seconds.ok()) return seconds.status();
    std::vector<double> rows_per_second;
    for (size_t i = 0; i < sizes.size(); ++i) {
      rows_per_second.push_back(sizes[i] / std::max((*seconds)[i], 1e-9));
    }
    const double best =
        *std::max_element(rows_per_second.begin(), rows_per_second.end());
    size_t chosen = 0;
    while (rows_per_second[chosen] < kWithinBest * best) ++chosen;
    caps.push_back(sizes[chosen]);
  }
  // Longer rows never earn a larger batch than shorter ones.
  for (size_t i = caps.size() - 1; i > 0; --i) {
    caps[i - 1] = std::max(caps[i - 1], caps[i]);
  }
  return caps;
}

}  // namespace fusion::serving
