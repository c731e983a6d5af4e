// OpenBLAS picks its compute kernels from the CPU model when it loads. A
// release older than the CPU does not know the model and falls back to its
// generic Prescott (SSE3) kernels even when the CPU has AVX-512: Debian 12's
// OpenBLAS 0.3.21 does so on Intel family 6 model 207 (Emerald Rapids), where
// the model's forward then runs 2.5-3x slower. OPENBLAS_CORETYPE, read only
// at load, overrides the choice; this file sets it and restarts the binary.
// No Torch here: OpenBLAS is looked up at run time (dlsym), since LibTorch's
// BLAS may or may not be it.
#ifndef FUSION_SERVER_RUNTIME_BLAS_KERNELS_H_
#define FUSION_SERVER_RUNTIME_BLAS_KERNELS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace fusion::runtime {

// The CPU features that decide which OpenBLAS kernels can run.
struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;  // F, CD, BW, DQ and VL, with OS support
  bool avx512_bf16 = false;
};

CpuFeatures DetectCpuFeatures();

// The best OpenBLAS core type for `cpu` among "Cooperlake", "SkylakeX" and
// "Haswell" (all known to OpenBLAS 0.3.x), or nullopt for a CPU without
// AVX2 and FMA, which is left to OpenBLAS.
std::optional<std::string> BestOpenBlasCore(const CpuFeatures& cpu);

// The core to restart with: set only when OpenBLAS fell back to Prescott,
// the CPU supports better, and the user has not chosen (`coretype_set`).
std::optional<std::string> BetterOpenBlasCore(absl::string_view loaded_core,
                                              bool coretype_set,
                                              const CpuFeatures& cpu);

// The core type OpenBLAS loaded with ("Cooperlake", ...), or nullopt when
// this process has no OpenBLAS.
std::optional<std::string> LoadedOpenBlasCore();

// Call first in main(), before any thread starts. When BetterOpenBlasCore
// says so, sets OPENBLAS_CORETYPE and re-executes this binary with `argv`
// (same pid, same arguments), logging why. Returns only when no restart is
// needed or exec failed (logged; the process keeps the slow kernels).
void RestartForBetterBlasKernels(char** argv);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_BLAS_KERNELS_H_
