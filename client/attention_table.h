// Renders text -> feature attention for a terminal (fusion-client --show).
// Pure functions; thread-safe.
#ifndef FUSION_CLIENT_ATTENTION_TABLE_H_
#define FUSION_CLIENT_ATTENTION_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fusion/v1/scoring.pb.h"

namespace fusion::client {

// Text -> feature weights as a tokens x features matrix, heads averaged.
struct AttentionView {
  std::vector<std::string> tokens;
  std::vector<std::string> features;
  std::vector<float> weights;  // row-major, tokens.size() x features.size()
  int heads = 1;               // how many heads were averaged
  float at(size_t token, size_t feature) const {
    return weights[token * features.size() + feature];
  }
};

// From a response's attention ([heads,] tokens x features).
// INVALID_ARGUMENT when there is none or the shape does not match.
absl::StatusOr<AttentionView> TextToFeatureView(
    const fusion::v1::Attention& attention);

// One line per token: its `top_k` features by weight, each with the weight
// and a bar `bar_width` cells long at weight 1.
std::string RenderTopFeatures(const AttentionView& view, int top_k = 3,
                              int bar_width = 8);

// A tokens x features grid of shades (each row scaled by its own maximum),
// columns numbered, with a legend naming the features.
std::string RenderHeatmap(const AttentionView& view);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_ATTENTION_TABLE_H_
