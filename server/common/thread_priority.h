// The CPU priority of the threads that compute (batch executors: collation;
// forward threads: the model), against the threads that receive, refuse and
// answer RPCs (gRPC's, httplib's).
//
// Why: on a saturated CPU the compute threads are always runnable, and a
// thread that must refuse a request (queue full) or queue a new one waits
// behind them for a time slice. Under a burst, refusals then take seconds
// and the requests back up inside gRPC. With the compute threads at a
// higher nice value the scheduler lets the RPC threads run first when both
// are runnable; when nothing arrives the compute threads still get the
// whole CPU, so throughput does not change.
//
// Linux only (per-thread nice); elsewhere a no-op. Raising a nice value
// needs no privilege.
#ifndef FUSION_SERVER_COMMON_THREAD_PRIORITY_H_
#define FUSION_SERVER_COMMON_THREAD_PRIORITY_H_

namespace fusion::common {

// --compute_nice's default.
inline constexpr int kDefaultComputeNice = 10;

// Process-wide, for threads entered after the call: 0 (no change) .. 19.
// Set once at start, before models load.
void SetComputeNice(int nice);
int ComputeNice();

// Names the calling thread (at most 15 characters, for top and perf) and
// lowers it to ComputeNice(). Threads it starts later inherit the value
// (LibTorch's intra-op pool, created by the first forward).
void EnterComputeThread(const char* name);

}  // namespace fusion::common

#endif  // FUSION_SERVER_COMMON_THREAD_PRIORITY_H_
