#include "server/runtime/blas_kernels.h"

#include "gtest/gtest.h"

namespace fusion::runtime {
namespace {

constexpr CpuFeatures kSse3Only{};
constexpr CpuFeatures kAvx2{/*avx2_fma=*/true, /*avx512=*/false,
                            /*avx512_bf16=*/false};
constexpr CpuFeatures kAvx512{true, true, false};
constexpr CpuFeatures kAvx512Bf16{true, true, true};

TEST(BestOpenBlasCore, WidestKernelsTheCpuRuns) {
  EXPECT_EQ(BestOpenBlasCore(kAvx512Bf16), "Cooperlake");
  EXPECT_EQ(BestOpenBlasCore(kAvx512), "SkylakeX");
  EXPECT_EQ(BestOpenBlasCore(kAvx2), "Haswell");
  EXPECT_EQ(BestOpenBlasCore(kSse3Only), std::nullopt);
}

TEST(BetterOpenBlasCore, ReplacesThePrescottFallback) {
  EXPECT_EQ(BetterOpenBlasCore("Prescott", false, kAvx512Bf16), "Cooperlake");
  EXPECT_EQ(BetterOpenBlasCore("prescott", false, kAvx2), "Haswell");
}

TEST(BetterOpenBlasCore, KeepsACpuThatOnlyRunsPrescott) {
  EXPECT_EQ(BetterOpenBlasCore("Prescott", false, kSse3Only), std::nullopt);
}

TEST(BetterOpenBlasCore, KeepsAKnowingChoice) {
  // OpenBLAS recognised the CPU: its choice may be finer than ours.
  EXPECT_EQ(BetterOpenBlasCore("Zen", false, kAvx2), std::nullopt);
  EXPECT_EQ(BetterOpenBlasCore("Haswell", false, kAvx512Bf16), std::nullopt);
}

TEST(BetterOpenBlasCore, KeepsTheUsersChoice) {
  EXPECT_EQ(BetterOpenBlasCore("Prescott", true, kAvx512Bf16), std::nullopt);
}

}  // namespace
}  // namespace fusion::runtime
