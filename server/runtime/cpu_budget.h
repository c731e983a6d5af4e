// How many CPUs this process may really use: the affinity mask, further
// limited by a cgroup v2 CPU quota (containers). hardware_concurrency()
// overstates both.
#ifndef FUSION_SERVER_RUNTIME_CPU_BUDGET_H_
#define FUSION_SERVER_RUNTIME_CPU_BUDGET_H_

namespace fusion::runtime {

// Always >= 1.
int UsableCpuCount();

// How a model's forwards spread over the CPUs: executors (model instances,
// each running one batch at a time) x LibTorch intra-op threads per forward.
struct ThreadPlan {
  int executors = 1;
  int intra_op_threads = 1;
};

// The most executors chosen for a CPU: more split the load into ever smaller
// batches. A guess; only 2 CPUs were measured.
inline constexpr int kMaxDefaultCpuExecutors = 8;

// `instance_count` and `intra_op_threads` as configured, 0 meaning "choose";
// both >= 1 in the result. A GPU gets one executor. On a CPU, executors x
// threads is about `usable_cpus`, and with neither set each CPU gets an
// executor of its own with one thread, up to kMaxDefaultCpuExecutors
// executors (then threads grow): batches side by side beat one batch split
// over threads for this model (on 2 CPUs 1.7x the throughput, and no slower
// for a lone request).
ThreadPlan PlanThreads(int usable_cpus, bool gpu, int instance_count,
                       int intra_op_threads);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_CPU_BUDGET_H_
