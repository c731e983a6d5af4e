#include "server/common/thread_priority.h"

#include <atomic>

#ifdef __linux__
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/common/log.h"
#endif

namespace fusion::common {
namespace {
std::atomic<int> compute_nice{kDefaultComputeNice};
}  // namespace

void SetComputeNice(int nice) {
  compute_nice.store(nice, std::memory_order_relaxed);
}

int ComputeNice() { return compute_nice.load(std::memory_order_relaxed); }

void EnterComputeThread(const char* name) {
#ifdef __linux__
  pthread_setname_np(pthread_self(), name);
  const int nice = ComputeNice();
  if (nice == 0) return;
  // On Linux, PRIO_PROCESS with a thread id sets that thread alone.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  const int current = getpriority(PRIO_PROCESS, tid);
  if (current >= nice) return;  // never raise a priority
  if (setpriority(PRIO_PROCESS, tid, nice) != 0) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      Log(LogLevel::kWarning, "compute threads keep nice ", current,
          ": setpriority(", nice, ") failed: ", std::strerror(errno));
    }
  }
#else
  (void)name;
#endif
}

}  // namespace fusion::common
