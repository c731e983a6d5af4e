#include "server/common/thread_priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

namespace fusion::common {
namespace {

int ThisThreadNice() {
  return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
}

// The nice value a new thread has after EnterComputeThread with
// `compute_nice`; with `start_nice` >= 0 the thread first sets that itself.
int NiceAfterEntering(int compute_nice, int start_nice = -1) {
  SetComputeNice(compute_nice);
  int nice = -100;
  std::thread thread([&] {
    if (start_nice >= 0) {
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)),
                  start_nice);
    }
    EnterComputeThread("test-compute");
    nice = ThisThreadNice();
  });
  thread.join();
  SetComputeNice(kDefaultComputeNice);
  return nice;
}

TEST(ThreadPriorityTest, LowersTheCallingThreadOnly) {
  const int mine = ThisThreadNice();
  ASSERT_LT(mine, 5) << "run the test at a nice value below 5";
  EXPECT_EQ(NiceAfterEntering(5), 5);
  EXPECT_EQ(ThisThreadNice(), mine);
}

TEST(ThreadPriorityTest, ZeroLeavesTheThreadAlone) {
  EXPECT_EQ(NiceAfterEntering(0), ThisThreadNice());
}

TEST(ThreadPriorityTest, NeverRaisesAPriority) {
  // A thread already nicer than asked keeps its value.
  EXPECT_EQ(NiceAfterEntering(5, /*start_nice=*/12), 12);
}

TEST(ThreadPriorityTest, ThreadsStartedLaterInheritIt) {
  SetComputeNice(7);
  int child = -100;
  std::thread thread([&] {
    EnterComputeThread("test-compute");
    std::thread([&] { child = ThisThreadNice(); }).join();
  });
  thread.join();
  SetComputeNice(kDefaultComputeNice);
  EXPECT_EQ(child, 7);
}

}  // namespace
}  // namespace fusion::common
