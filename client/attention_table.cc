#include "client/attention_table.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fusion::client {
namespace {

constexpr size_t kTokenWidth = 16;

// Counts UTF-8 code points (close enough to display width for tokens).
size_t DisplayWidth(const std::string& s) {
  size_t width = 0;
  for (unsigned char c : s) width += (c & 0xC0) != 0x80;
  return width;
}

std::string FitToken(const std::string& token) {
  std::string out;
  size_t width = 0;
  for (size_t i = 0; i < token.size();) {
    size_t len = 1;
    const unsigned char c = token[i];
    if (c >= 0xF0)
      len = 4;
    else if (c >= 0xE0)
      len = 3;
    else if (c >= 0xC0)
      len = 2;
    if (width + 1 == kTokenWidth && i + len < token.size()) {
      out += "\u2026";  // …
      ++width;
      break;
    }
    out.append(token, i, len);
    ++width;
    i += len;
  }
  out.append(kTokenWidth > width ? kTokenWidth - width : 0, ' ');
  return out;
}

// A bar of `cells` cells at weight 1, in eighths of a cell.
std::string Bar(float weight, int cells) {
  static const char* kEighths[] = {"",       "\u258F", "\u258E", "\u258D",
                                   "\u258C", "\u258B", "\u258A", "\u2589"};
  const int eighths =
      static_cast<int>(std::clamp(weight, 0.0f, 1.0f) * cells * 8 + 0.5f);
  std::string bar;
  for (int i = 0; i < eighths / 8; ++i) bar += "\u2588";
  bar += kEighths[eighths % 8];
  return bar;
}

}  // namespace

absl::StatusOr<AttentionView> TextToFeatureView(
    const fusion::v1::Attention& attention) {
  const auto& shape = attention.text_to_features_shape();
  if (shape.size() != 2 && shape.size() != 3) {
    return absl::InvalidArgumentError(
        "the response carries no text-to-feature attention (ask for it with "
        "--attention=mean or --attention=per-head)");
  }
  AttentionView view;
  view.heads = shape.size() == 3 ? shape[0] : 1;
  const int tokens = shape[shape.size() - 2];
  const int features = shape[shape.size() - 1];
  if (view.heads <= 0 || tokens <= 0 || features <= 0 ||
      attention.text_to_features_size() != view.heads * tokens * features ||
      attention.tokens_size() != tokens ||
      attention.feature_names_size() != features) {
    return absl::InvalidArgumentError(
        "attention shape does not match its tokens, features or values");
  }
  view.tokens.assign(attention.tokens().begin(), attention.tokens().end());
  view.features.assign(attention.feature_names().begin(),
                       attention.feature_names().end());
  const size_t cells = static_cast<size_t>(tokens) * features;
  view.weights.assign(cells, 0.0f);
  for (int h = 0; h < view.heads; ++h) {
    for (size_t i = 0; i < cells; ++i) {
      view.weights[i] += attention.text_to_features(h * cells + i);
    }
  }
  for (float& w : view.weights) w /= view.heads;
  return view;
}

std::string RenderTopFeatures(const AttentionView& view, int top_k,
                              int bar_width) {
  const size_t k = std::min<size_t>(std::max(top_k, 1), view.features.size());
  std::vector<size_t> order(view.features.size());
  auto top_of = [&](size_t t) {
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(
        order.begin(), order.begin() + k, order.end(),
        [&](size_t a, size_t b) { return view.at(t, a) > view.at(t, b); });
  };
  size_t name_width = 0;
  for (size_t t = 0; t < view.tokens.size(); ++t) {
    top_of(t);
    for (size_t i = 0; i < k; ++i) {
      name_width = std::max(name_width, view.features[order[i]].size());
    }
  }
  std::string out = absl::StrCat(
      FitToken("token"), "  top ", k, " features by text->feature attention",
      view.heads > 1 ? absl::StrCat(" (mean of ", view.heads, " heads)") : "",
      "\n");
  for (size_t t = 0; t < view.tokens.size(); ++t) {
    top_of(t);
    absl::StrAppend(&out, FitToken(view.tokens[t]));
    for (size_t i = 0; i < k; ++i) {
      const float w = view.at(t, order[i]);
      const std::string bar = Bar(w, bar_width);
      absl::StrAppend(&out, "  ",
                      absl::StrFormat("%-*s %.2f %s", name_width,
                                      view.features[order[i]], w, bar),
                      std::string(bar_width + 1 - DisplayWidth(bar), ' '));
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  }
  return out;
}

std::string RenderHeatmap(const AttentionView& view) {
  static const char* kShades[] = {" ", "\u2591", "\u2592", "\u2593",
                                  "\u2588"};  // ░ ▒ ▓ █
  std::string out = absl::StrCat(
      "heatmap: rows are tokens, columns features; each row scaled to its "
      "maximum (",
      kShades[1], " low .. ", kShades[4], " max)\n", FitToken(""));
  for (size_t f = 0; f < view.features.size(); ++f) {
    absl::StrAppend(&out, absl::StrFormat("%3d", f + 1));
  }
  out += "\n";
  for (size_t t = 0; t < view.tokens.size(); ++t) {
    float row_max = 0.0f;
    for (size_t f = 0; f < view.features.size(); ++f) {
      row_max = std::max(row_max, view.at(t, f));
    }
    absl::StrAppend(&out, FitToken(view.tokens[t]));
    for (size_t f = 0; f < view.features.size(); ++f) {
      const float scaled = row_max > 0 ? view.at(t, f) / row_max : 0.0f;
      const int shade = std::clamp(static_cast<int>(scaled * 4 + 0.5f), 0, 4);
      absl::StrAppend(&out, " ", kShades[shade], kShades[shade]);
    }
    out += "\n";
  }
  out += "features:\n";
  constexpr size_t kPerLine = 4;
  for (size_t f = 0; f < view.features.size(); f += kPerLine) {
    std::string line;
    for (size_t i = f; i < std::min(f + kPerLine, view.features.size()); ++i) {
      absl::StrAppend(&line,
                      absl::StrFormat("  %2d %-24s", i + 1, view.features[i]));
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace fusion::client
