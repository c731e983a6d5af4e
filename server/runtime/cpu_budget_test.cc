#include "server/runtime/cpu_budget.h"

#include "gtest/gtest.h"

namespace fusion::runtime {
namespace {

void ExpectPlan(ThreadPlan plan, int executors, int threads) {
  EXPECT_EQ(plan.executors, executors);
  EXPECT_EQ(plan.intra_op_threads, threads);
}

TEST(PlanThreads, CpuUnsetGivesEachCpuAnExecutor) {
  ExpectPlan(PlanThreads(4, /*gpu=*/false, 0, 0), 4, 1);
  ExpectPlan(PlanThreads(1, false, 0, 0), 1, 1);
}

TEST(PlanThreads, ManyCpusGrowThreadsPastTheExecutorCap) {
  ExpectPlan(PlanThreads(kMaxDefaultCpuExecutors, false, 0, 0),
             kMaxDefaultCpuExecutors, 1);
  ExpectPlan(PlanThreads(64, false, 0, 0), 8, 8);
  ExpectPlan(PlanThreads(12, false, 0, 0), 6, 2);
  ExpectPlan(PlanThreads(64, false, 0, /*intra_op_threads=*/2), 8, 2);
}

TEST(PlanThreads, CpuSharesOutWhatIsNotSet) {
  ExpectPlan(PlanThreads(4, false, /*instance_count=*/1, 0), 1, 4);
  ExpectPlan(PlanThreads(4, false, 3, 0), 3, 1);
  ExpectPlan(PlanThreads(4, false, 0, /*intra_op_threads=*/2), 2, 2);
  ExpectPlan(PlanThreads(4, false, 0, 8), 1, 8);
}

TEST(PlanThreads, KeepsWhatIsSet) {
  ExpectPlan(PlanThreads(2, false, 3, 5), 3, 5);
  ExpectPlan(PlanThreads(2, true, 2, 1), 2, 1);
}

TEST(PlanThreads, GpuRunsOneExecutorByDefault) {
  ExpectPlan(PlanThreads(8, /*gpu=*/true, 0, 0), 1, 8);
}

TEST(PlanThreads, NeverBelowOne) {
  ExpectPlan(PlanThreads(0, false, 0, 0), 1, 1);
}

TEST(UsableCpuCount, AtLeastOne) { EXPECT_GE(UsableCpuCount(), 1); }

}  // namespace
}  // namespace fusion::runtime
