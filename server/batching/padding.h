// Padding efficiency of a batch: the share of the computed token positions
// that hold real tokens, when every task is padded to the longest one.
// TaskT needs `int length() const`.
#ifndef FUSION_SERVER_BATCHING_PADDING_H_
#define FUSION_SERVER_BATCHING_PADDING_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace fusion::batching {

struct PaddingStats {
  int64_t real_tokens = 0;      // sum of the lengths
  int64_t computed_tokens = 0;  // batch size x longest length
  // 1.0 for an empty batch or one of empty tasks: nothing was wasted.
  double efficiency() const {
    return computed_tokens == 0
               ? 1.0
               : static_cast<double>(real_tokens) / computed_tokens;
  }
  PaddingStats& operator+=(const PaddingStats& other) {
    real_tokens += other.real_tokens;
    computed_tokens += other.computed_tokens;
    return *this;
  }
};

template <typename TaskT>
PaddingStats MeasurePadding(const std::vector<std::unique_ptr<TaskT>>& batch) {
  PaddingStats stats;
  int64_t longest = 0;
  for (const auto& task : batch) {
    stats.real_tokens += task->length();
    longest = std::max<int64_t>(longest, task->length());
  }
  stats.computed_tokens = longest * static_cast<int64_t>(batch.size());
  return stats;
}

}  // namespace fusion::batching

#endif  // FUSION_SERVER_BATCHING_PADDING_H_
