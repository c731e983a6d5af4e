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
    absl::Duration per_row = per_request_ + b.length * per_token_;
    // A CPU's cache: past cliff_rows rows of cliff_length to
    // cliff_max_length tokens, every row costs cliff_factor times as much.
    if (b.size > cliff_rows_ && b.length >= cliff_length_ &&
        b.length <= cliff_max_length_) {
      per_row *= cliff_factor_;
    }
    absl::SleepFor(fixed_ + b.size * per_row);
    ++calls_;
    if (calls_ >= stall_from_call_ &&
        calls_ < stall_from_call_ + stalled_calls_) {
      absl::SleepFor(stall_);
    }
    return std::vector<ScoringOutput>(b.size);
  }
  std::string device() const override { return "cost-model"; }
  int intra_op_threads() const override { return 1; }

  bool fail_ = false;
  int cliff_rows_ = 1 << 30;
  int cliff_length_ = 0;
  int cliff_max_length_ = 1 << 30;
  int cliff_factor_ = 1;
  int stall_from_call_ = -1;  // the 1-based forward where a stall begins
  int stalled_calls_ = 0;     // forwards in a row that it slows
  absl::Duration stall_;      // added to each of them
  int calls_ = 0;

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
  // 8 ms fixed, 200 us per token: 40 positions. (At a quarter of that
  // scale, sleeps overshooting by 0.65 ms under ctest -j2 read as 53.)
  CostModelRuntime runtime(absl::Milliseconds(8), absl::Microseconds(400),
                           absl::Microseconds(200));
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

// Bucket caps: 5 buckets, lengths 8..128, sizes 1..64. Costs in
// microseconds keep the test well under a second.
const std::vector<int> kEdges = {8, 16, 32, 64};

// 2 ms a forward, 2 us a row, 1 us a token: without a cliff, 64 rows run
// at least 1.2x the rows/s of 32 at every length (clear of the 5% margin).
CostModelRuntime CheapRuntime() {
  return CostModelRuntime(absl::Milliseconds(2), absl::Microseconds(2),
                          absl::Microseconds(1));
}

TEST(BucketBatchCapsTest, WithoutACliffEveryBucketTakesTheLargestBatch) {
  // A fixed cost per forward and linear rows: more rows, more rows/s.
  CostModelRuntime runtime = CheapRuntime();
  auto caps = MeasureBucketBatchCaps(runtime, Options(), kEdges);
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(*caps, std::vector<int>({64, 64, 64, 64, 64}));
}

TEST(BucketBatchCapsTest, LongRowsStopAtTheCliff) {
  CostModelRuntime runtime = CheapRuntime();
  runtime.cliff_rows_ = 8;
  runtime.cliff_length_ = 64;
  runtime.cliff_factor_ = 10;
  auto caps = MeasureBucketBatchCaps(runtime, Options(), kEdges);
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(*caps, std::vector<int>({64, 64, 64, 8, 8}));
}

TEST(BucketBatchCapsTest, AStallOverSeveralForwardsChangesNoCap) {
  // Another process takes the CPU for seven forwards in a row (+20 ms
  // each, several times a forward). Timed one size after another, those seven
  // would be all of one size's samples, and the size would lose its bucket (as
  // it did under a test run: 2 for the <=16-token bucket); interleaved, they
  // are one sample of each of seven sizes.
  for (int first : {3, 10, 40, 80}) {
    CostModelRuntime runtime = CheapRuntime();
    runtime.cliff_rows_ = 8;
    runtime.cliff_length_ = 64;
    runtime.cliff_factor_ = 10;
    runtime.stall_from_call_ = first;
    runtime.stalled_calls_ = 7;
    runtime.stall_ = absl::Milliseconds(20);
    auto caps = MeasureBucketBatchCaps(runtime, Options(), kEdges);
    ASSERT_TRUE(caps.ok()) << caps.status();
    EXPECT_EQ(*caps, std::vector<int>({64, 64, 64, 8, 8}))
        << "stall from forward " << first;
  }
}

TEST(BucketBatchCapsTest, AShorterBucketIsNeverCappedBelowALongerOne) {
  // Only rows of up to 16 tokens hit a cliff (at 4 rows, 100x per row):
  // measured alone their buckets would get 4, below the longer ones' 64.
  CostModelRuntime runtime = CheapRuntime();
  runtime.cliff_rows_ = 4;
  runtime.cliff_max_length_ = 16;
  runtime.cliff_factor_ = 100;
  auto caps = MeasureBucketBatchCaps(runtime, Options(), kEdges);
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(*caps, std::vector<int>({64, 64, 64, 64, 64}));
}

TEST(BucketBatchCapsTest, BucketsPastMaxTokensAreNotMeasuredAgain) {
  // Edges 64 and 128 with max_tokens 64: the last two buckets hold no row.
  CostModelRuntime runtime = CheapRuntime();
  ForwardCostOptions options = Options();
  options.max_tokens = 64;
  auto caps = MeasureBucketBatchCaps(runtime, options, {32, 64, 128});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(caps->size(), 4u);
  // 7 sizes x 5 rounds for each of the two lengths, 32 and 64.
  EXPECT_EQ(runtime.calls_, 2 * 7 * 5);
}

TEST(BucketBatchCapsTest, AFailingForwardIsReported) {
  CostModelRuntime runtime = CheapRuntime();
  runtime.fail_ = true;
  auto caps = MeasureBucketBatchCaps(runtime, Options(), kEdges);
  EXPECT_EQ(caps.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace fusion::serving
