#include "server/runtime/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

namespace fusion::runtime {
namespace {

int AffinityCpuCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

// cgroup v2 "cpu.max" holds "<quota> <period>" or "max <period>".
int CgroupQuotaCpuCount() {
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double cpus =
      std::strtod(quota.c_str(), nullptr) / static_cast<double>(period);
  return std::max(1, static_cast<int>(std::ceil(cpus)));
}

}  // namespace

ThreadPlan PlanThreads(int usable_cpus, bool gpu, int instance_count,
                       int intra_op_threads) {
  const int cpus = std::max(1, usable_cpus);
  ThreadPlan plan;
  if (instance_count > 0) {
    plan.executors = instance_count;
  } else if (gpu) {
    plan.executors = 1;
  } else {
    // Past kMaxDefaultCpuExecutors CPUs, threads grow instead of executors.
    const int threads =
        intra_op_threads > 0
            ? intra_op_threads
            : (cpus + kMaxDefaultCpuExecutors - 1) / kMaxDefaultCpuExecutors;
    plan.executors =
        std::max(1, std::min(kMaxDefaultCpuExecutors, cpus / threads));
  }
  plan.intra_op_threads = intra_op_threads > 0
                              ? intra_op_threads
                              : std::max(1, cpus / plan.executors);
  return plan;
}

int UsableCpuCount() {
  int cpus = AffinityCpuCount();
  if (int quota = CgroupQuotaCpuCount(); quota > 0)
    cpus = std::min(cpus, quota);
  return cpus;
}

}  // namespace fusion::runtime
