// How many CPUs this process may really use: the affinity mask, further
// limited by a cgroup v2 CPU quota (containers). hardware_concurrency()
// overstates both.
#ifndef FUSION_SERVER_RUNTIME_CPU_BUDGET_H_
#define FUSION_SERVER_RUNTIME_CPU_BUDGET_H_

namespace fusion::runtime {

// Always >= 1.
int UsableCpuCount();

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_CPU_BUDGET_H_
