#include "server/serving/warmup.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace fusion::serving {

std::vector<WarmupShape> WarmupShapes(const fusion::v1::ModelConfig& config) {
  const auto& batching = config.batching();
  const int max_batch = std::max(1, batching.max_batch_size());
  std::set<int> sizes = {max_batch};
  // 64-bit: doubling past 2^30 would overflow an int (max_batch_size may be
  // as large as INT_MAX).
  for (int64_t size = 1; size < max_batch; size *= 2) {
    sizes.insert(static_cast<int>(size));
  }
  for (int size : batching.preferred_batch_sizes()) sizes.insert(size);
  std::set<int> lengths = {config.max_tokens()};
  for (int edge : batching.length_bucket_edges()) {
    lengths.insert(std::clamp(edge, 3, config.max_tokens()));
  }
  std::vector<WarmupShape> shapes;
  for (int tokens : lengths) {
    for (int requests : sizes) shapes.push_back({requests, tokens});
  }
  return shapes;
}

absl::StatusOr<absl::Duration> WarmUp(runtime::ModelRuntime& runtime,
                                      const text::WordPieceTokenizer& tokenizer,
                                      const fusion::v1::ModelConfig& config) {
  const absl::Time start = absl::Now();
  const std::vector<WarmupShape> shapes = WarmupShapes(config);
  for (int round = 0; round < config.runtime().warmup_iterations(); ++round) {
    for (const WarmupShape& shape : shapes) {
      runtime::ScoringInput input;
      input.token_ids.assign(shape.tokens, tokenizer.unk_id());
      input.token_ids.front() = tokenizer.cls_id();
      input.token_ids.back() = tokenizer.sep_id();
      input.features.assign(config.features_size(), 0.0f);
      runtime::ScoringInput with_attention = input;
      with_attention.attention = runtime::AttentionDetail::kPerHead;
      std::vector<const runtime::ScoringInput*> batch(shape.requests, &input);
      batch.back() = &with_attention;
      auto prepared = runtime.Prepare(batch);
      if (!prepared.ok()) return prepared.status();
      auto outputs = runtime.Run(**prepared);
      if (!outputs.ok()) {
        return absl::Status(outputs.status().code(),
                            absl::StrCat("warm-up batch of ", shape.requests,
                                         " x ", shape.tokens, " tokens: ",
                                         outputs.status().message()));
      }
    }
  }
  return absl::Now() - start;
}

}  // namespace fusion::serving
