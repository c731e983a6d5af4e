#include "server/serving/forward_cost.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/time/clock.h"

namespace fusion::serving {
namespace {

using runtime::ScoringInput;
using runtime::ScoringOutput;

// A runtime whose forward sleeps fixed + n x (per_request + per_token x L).
class CostModelRuntime final : public runtime::ModelRuntime {
 public:
  CostModelRuntime(absl::Duration fixed, absl::Duration per_request,
                   absl::Duration per_token)
      : fixed_(fixed), per_request_(per_request), per_token_(per_token) {}

  struct Prepared : runtime::PreparedBatch {
    int64_t size = 0;
    int64_t length = 0;
  };
  absl::StatusOr<std::unique_ptr<runtime::PreparedBatch>> Prepare(
      absl::Span<const ScoringInput* const> batch) override {
    if (fail_) return absl::InternalError("forward failed");
    auto prepared = std::make_unique<Prepared>();
    prepared->size = static_cast<int64_t>(batch.size());
    for (const ScoringInput* in : batch) {
      prepared->length =
          std::max<int64_t>(prepared->length, in->token_ids.size());
    }
    return prepared;
  }
  absl::StatusOr<std::vector<ScoringOutput>> Run(
      runtime::PreparedBatch& batch) override {
    auto& b = static_cast<Prepared&>(batch);
    absl::SleepFor(fixed_ + b.size * (per_request_ + b.length * per_token_));
    return std::vector<ScoringOutput>(b.size);
  }
  std::string device() const override { return "cost-model"; }
  int intra_op_threads() const override { return 1; }

  bool fail_ = false;

 private:
  const absl::Duration fixed_, per_request_, per_token_;
};

ForwardCostOptions Options() {
  ForwardCostOptions options;
  options.num_features = 4;
  options.max_tokens = 128;
  options.max_batch_size = 64;
  options.repetitions = 5;
  return options;
}

TEST(ForwardCostTest, RecoversTheFixedCostInTokenPositions) {
  // 2 ms fixed, 50 us per token: 40 positions.
  CostModelRuntime runtime(absl::Milliseconds(2), absl::Microseconds(100),
                           absl::Microseconds(50));
  auto tokens = MeasureMergeCostTokens(runtime, Options());
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_NEAR(*tokens, 40.0, 10.0);
}

TEST(ForwardCostTest, FreePaddingMeansMergeEverything) {
  // A GPU-like forward: launch overhead only.
  CostModelRuntime runtime(absl::Milliseconds(1), absl::ZeroDuration(),
                           absl::ZeroDuration());
  auto tokens = MeasureMergeCostTokens(runtime, Options());
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  // Padding measures as (nearly) free: far above any CPU figure, so that
  // every late batch merges.
  EXPECT_GT(*tokens, 500.0);
  EXPECT_LE(*tokens, 64.0 * 128.0);
}

TEST(ForwardCostTest, NothingToMergeWithBatchesOfOne) {
  CostModelRuntime runtime(absl::Milliseconds(1), absl::ZeroDuration(),
                           absl::ZeroDuration());
  ForwardCostOptions options = Options();
  options.max_batch_size = 1;
  auto tokens = MeasureMergeCostTokens(runtime, options);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(*tokens, 0.0);
}

TEST(ForwardCostTest, AFailingForwardIsReported) {
  CostModelRuntime runtime(absl::ZeroDuration(), absl::ZeroDuration(),
                           absl::ZeroDuration());
  runtime.fail_ = true;
  auto tokens = MeasureMergeCostTokens(runtime, Options());
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace fusion::serving
