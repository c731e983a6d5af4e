// Which arithmetic a model's forwards use: the policy, without Torch.
//
// bfloat16 runs a large batch's matmuls faster on CPUs that compute it
// natively, but each oneDNN bf16 matmul call costs more than an fp32 one, so
// a small batch runs slower (1.5-1.7x the time at one request, measured on
// an AVX512-BF16 EPYC), and so does each shape not seen before. So AUTO runs
// bf16 per batch, from a size measured at load, and only once the bundle's
// golden answers pass in bf16. TorchModelRuntime applies what this file
// decides.
//
// A batch's size is counted in positions, requests x (padded tokens +
// features): the features are tokens of the cross-attention, and with them
// counted the bf16/fp32 time ratio follows size far better than with
// requests x tokens alone (at 64 of those, 16 requests of 4 tokens ran 0.82x
// in bf16, one of 64 tokens 1.26x).
#ifndef FUSION_SERVER_RUNTIME_PRECISION_H_
#define FUSION_SERVER_RUNTIME_PRECISION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fusion/v1/model_config.pb.h"
#include "server/runtime/model_runtime.h"

namespace fusion::runtime {

using Precision = fusion::v1::RuntimeConfig::Precision;

// The most a golden probability may move in bf16 (0.005 for the bundle in
// models/fusion/1).
inline constexpr double kMaxBf16ProbabilityDelta = 0.01;

// "auto", "fp32" or "bf16" (any case); INVALID_ARGUMENT otherwise.
absl::StatusOr<Precision> ParsePrecision(absl::string_view name);

// Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16);
// false off x86. Without, oneDNN emulates bf16, slower than fp32.
bool CpuComputesBf16Natively();

// What to try at load, before the golden check and the timing.
enum class Bf16Use {
  kNever,         // fp32 only
  kEveryBatch,    // asked for: bf16 for all batches, or fail the load
  kLargeBatches,  // AUTO: bf16 from a measured size, else fp32
};

struct PrecisionDecision {
  Bf16Use use = Bf16Use::kNever;
  std::string reason;  // why, for the log
};

// `requested` as configured (or by flag). AUTO tries bf16 only on a CPU
// that computes it natively, with golden answers to check it against; a GPU
// stays fp32 under AUTO until bf16 is measured there.
PrecisionDecision DecidePrecision(Precision requested, bool cuda,
                                  bool native_bf16, bool golden_available);

// A synthetic batch timed at load: `requests` copies of one request
// `tokens` long.
struct CrossoverShape {
  int requests = 1;
  int tokens = 1;
};

// Requests of 16 tokens (max_tokens if fewer) doubling from 1 to max_batch,
// then max_batch of 32: both sides of the crossovers measured on an EPYC
// (140-380 positions, with the default and Cooperlake OpenBLAS kernels).
std::vector<CrossoverShape> CrossoverShapes(int max_tokens, int max_batch);

// Median seconds of one forward of a shape in each precision.
struct ShapeTiming {
  int64_t positions = 0;  // requests x (padded tokens + features)
  double fp32_seconds = 0;
  double bf16_seconds = 0;
};

// Times every shape in both precisions `repetitions` times, shapes and
// precisions interleaved (which precision goes first alternates) so that
// drift hits both alike; medians. `forward_seconds(shape, bf16)` runs one
// forward and returns its seconds. Repetition r lengthens the requests by r
// tokens (up to max_tokens, the model's limit), so that no shape is timed
// twice, and positions count the mean length run: served traffic brings new
// shapes
// all the time, and oneDNN's bf16 matmuls pay for each new one. Timed on one
// shape again and again, bf16 ran 1.06-1.24x fp32 at 32 requests on an
// AVX512-BF16 EPYC; served, on mixed traffic, 0.70-0.73x.
std::vector<ShapeTiming> TimeBothPrecisions(
    const std::vector<CrossoverShape>& shapes, int num_features, int max_tokens,
    int repetitions,
    const std::function<double(const CrossoverShape&, bool bf16)>&
        forward_seconds);

// bf16 must be this much faster at a size to be chosen there: near the
// crossover a 1-2% gain is noise, and not worth bf16's rounding.
inline constexpr double kMinBf16Gain = 0.05;

// The size from which bf16 beats fp32 by kMinBf16Gain: the smallest measured
// size from which it does at every larger measured size, moved down towards
// the next smaller size (where it does not) by interpolating the time ratio
// in log(size). nullopt when bf16 does not win at the largest size (or
// nothing was measured). Order of `timings` does not matter.
std::optional<int64_t> Bf16MinPositions(std::vector<ShapeTiming> timings);

// Whether a batch of `positions` positions runs in bf16.
inline bool RunsInBf16(const PrecisionPlan& plan, int64_t positions) {
  return plan.bf16 && positions >= plan.bf16_min_positions;
}

// "fp32" or "bf16": the metadata field and the build_info label.
std::string PrecisionName(const PrecisionPlan& plan);

// For the log: "fp32", "bf16", or "bf16 from N positions per batch
// (requests x (tokens + features)), fp32 below".
std::string DescribePrecision(const PrecisionPlan& plan);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_PRECISION_H_
