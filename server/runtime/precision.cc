#include "server/runtime/precision.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fusion::runtime {

absl::StatusOr<Precision> ParsePrecision(absl::string_view name) {
  Precision precision;
  const std::string upper = absl::AsciiStrToUpper(name);
  if (upper.empty() || !fusion::v1::RuntimeConfig::Precision_Parse(
                           "PRECISION_" + upper, &precision)) {
    return absl::InvalidArgumentError(
        absl::StrCat("precision must be auto, fp32 or bf16, not '", name, "'"));
  }
  return precision;
}

bool CpuComputesBf16Natively() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
#if defined(__clang__)
  // clang 14 (the fuzz build) does not know "amx-bf16" here; every CPU with
  // AMX-BF16 so far (Sapphire Rapids on) also has AVX512-BF16.
  return __builtin_cpu_supports("avx512bf16");
#else
  return __builtin_cpu_supports("avx512bf16") ||
         __builtin_cpu_supports("amx-bf16");
#endif
#else
  return false;
#endif
}

PrecisionDecision DecidePrecision(Precision requested, bool cuda,
                                  bool native_bf16, bool golden_available) {
  switch (requested) {
    case fusion::v1::RuntimeConfig::PRECISION_FP32:
      return {Bf16Use::kNever, "fp32 as configured"};
    case fusion::v1::RuntimeConfig::PRECISION_BF16:
      return {Bf16Use::kEveryBatch, "bf16 as configured"};
    default:
      break;
  }
  if (cuda)
    return {Bf16Use::kNever, "AUTO on a GPU: bf16 not yet measured there"};
  if (!native_bf16) {
    return {Bf16Use::kNever, "AUTO: this CPU does not compute bf16 natively"};
  }
  if (!golden_available) {
    return {Bf16Use::kNever,
            "AUTO: no usable golden.jsonl (missing, or not fitting the model) "
            "to check bf16 against"};
  }
  return {Bf16Use::kLargeBatches, "AUTO: this CPU computes bf16 natively"};
}

std::vector<CrossoverShape> CrossoverShapes(int max_tokens, int max_batch) {
  const int short_len = std::min(16, max_tokens);
  std::vector<CrossoverShape> shapes;
  for (int requests = 1; requests < max_batch; requests *= 2) {
    shapes.push_back({requests, short_len});
  }
  shapes.push_back({max_batch, short_len});
  if (max_tokens > short_len) {
    shapes.push_back({max_batch, std::min(32, max_tokens)});
  }
  return shapes;
}

std::vector<ShapeTiming> TimeBothPrecisions(
    const std::vector<CrossoverShape>& shapes, int num_features, int max_tokens,
    int repetitions,
    const std::function<double(const CrossoverShape&, bool bf16)>&
        forward_seconds) {
  // [shape][bf16]: one sample per repetition.
  std::vector<std::vector<double>> samples[2];
  samples[0].resize(shapes.size());
  samples[1].resize(shapes.size());
  std::vector<int64_t> tokens_run(shapes.size(), 0);  // summed over samples
  for (int r = 0; r < std::max(1, repetitions); ++r) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      const CrossoverShape fresh{shapes[s].requests,
                                 std::min(shapes[s].tokens + r, max_tokens)};
      for (int k = 0; k < 2; ++k) {
        const bool bf16 = (k + r) % 2 == 1;
        samples[bf16][s].push_back(forward_seconds(fresh, bf16));
        tokens_run[s] += fresh.tokens;
      }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<ShapeTiming> timings;
  for (size_t s = 0; s < shapes.size(); ++s) {
    const size_t runs = 2 * samples[0][s].size();
    const double mean_tokens = static_cast<double>(tokens_run[s]) / runs;
    timings.push_back(
        {std::llround(shapes[s].requests * (mean_tokens + num_features)),
         median(samples[0][s]), median(samples[1][s])});
  }
  return timings;
}

std::optional<int64_t> Bf16MinPositions(std::vector<ShapeTiming> timings) {
  std::sort(timings.begin(), timings.end(),
            [](const ShapeTiming& a, const ShapeTiming& b) {
              return a.positions < b.positions;
            });
  constexpr double kTarget = 1.0 - kMinBf16Gain;  // bf16 / fp32 time
  auto ratio = [](const ShapeTiming& t) {
    return t.bf16_seconds / t.fp32_seconds;
  };
  // Walk down from the largest size while bf16 keeps winning.
  size_t first = timings.size();
  while (first > 0 && ratio(timings[first - 1]) < kTarget) --first;
  if (first == timings.size()) return std::nullopt;
  const ShapeTiming& win = timings[first];
  if (first == 0) return win.positions;
  const ShapeTiming& loss = timings[first - 1];
  if (loss.positions <= 0 || loss.positions == win.positions) {
    return win.positions;
  }
  // ratio(loss) >= kTarget > ratio(win), so 0 <= share < 1.
  const double share = (ratio(loss) - kTarget) / (ratio(loss) - ratio(win));
  const double log_size =
      std::log(static_cast<double>(loss.positions)) +
      share * std::log(static_cast<double>(win.positions) / loss.positions);
  return std::clamp<int64_t>(std::llround(std::exp(log_size)),
                             loss.positions + 1, win.positions);
}

std::string PrecisionName(const PrecisionPlan& plan) {
  return plan.bf16 ? "bf16" : "fp32";
}

std::string DescribePrecision(const PrecisionPlan& plan) {
  if (!plan.bf16 || plan.bf16_min_positions <= 0) return PrecisionName(plan);
  return absl::StrCat("bf16 from ", plan.bf16_min_positions,
                      " positions per batch (requests x (tokens + features)), "
                      "fp32 below");
}

}  // namespace fusion::runtime
