#include "server/runtime/blas_kernels.h"

#include <dlfcn.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "server/common/log.h"

namespace fusion::runtime {

CpuFeatures DetectCpuFeatures() {
  CpuFeatures cpu;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  cpu.avx2_fma =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  cpu.avx512_bf16 = cpu.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return cpu;
}

std::optional<std::string> BestOpenBlasCore(const CpuFeatures& cpu) {
  // Cooperlake's kernels are SkylakeX's plus BF16 ones; both measured
  // 1.05-1.2x Haswell's here.
  if (cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return std::nullopt;
}

std::optional<std::string> BetterOpenBlasCore(absl::string_view loaded_core,
                                              bool coretype_set,
                                              const CpuFeatures& cpu) {
  // Prescott is OpenBLAS's fallback for an unknown CPU; any other choice
  // was made knowingly and is kept.
  if (coretype_set || !absl::EqualsIgnoreCase(loaded_core, "Prescott")) {
    return std::nullopt;
  }
  return BestOpenBlasCore(cpu);
}

std::optional<std::string> LoadedOpenBlasCore() {
  using CoreName = char* (*)();
  auto fn =
      reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (fn == nullptr) return std::nullopt;
  const char* name = fn();
  if (name == nullptr) return std::nullopt;
  return std::string(name);
}

namespace {

// The path of this program's own binary, or nullopt when that cannot be
// exec'd with our argv: the program was started as an argument of the
// dynamic loader (`ld.so fusion-server ...`, then /proc/self/exe is the
// loader), or the path does not fit.
std::optional<std::string> OwnBinaryPath() {
  if (getauxval(AT_BASE) == 0) return std::nullopt;  // we are the loader
  char path[PATH_MAX];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof(path));
  if (length <= 0 || length >= static_cast<ssize_t>(sizeof(path))) {
    return std::nullopt;
  }
  return std::string(path, static_cast<size_t>(length));
}

}  // namespace

void RestartForBetterBlasKernels(char** argv) {
  const std::optional<std::string> loaded = LoadedOpenBlasCore();
  if (!loaded) return;
  const std::optional<std::string> better =
      BetterOpenBlasCore(*loaded, std::getenv("OPENBLAS_CORETYPE") != nullptr,
                         DetectCpuFeatures());
  if (!better) return;
  Log(LogLevel::kInfo, "OpenBLAS does not know this CPU and chose its generic ",
      *loaded, " kernels; restarting with OPENBLAS_CORETYPE=", *better,
      " (set OPENBLAS_CORETYPE yourself to choose)");
  // The resolved path, not /proc/self/exe: the process name (ps, top,
  // pkill) comes from the path exec'd.
  const std::optional<std::string> path = OwnBinaryPath();
  const char* why = "this binary's path is unknown";
  if (path) {
    setenv("OPENBLAS_CORETYPE", better->c_str(), /*overwrite=*/1);
    execv(path->c_str(), argv);
    why = std::strerror(errno);
    unsetenv("OPENBLAS_CORETYPE");  // child processes: as we found it
  }
  Log(LogLevel::kWarning, "restart failed (", why,
      "): the model runs on OpenBLAS's ", *loaded,
      " kernels, 2-3x slower; set OPENBLAS_CORETYPE=", *better,
      " before starting it");
}

}  // namespace fusion::runtime
