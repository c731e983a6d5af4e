// A deliberate data race, run by ctest with WILL_FAIL: it passes only if
// ThreadSanitizer reports the race and fails the process, proving that the
// tsan suite (with sanitizers/tsan_absl.cc linked in) can fail.
#include <thread>

#include "absl/synchronization/mutex.h"

int main() {
  absl::Mutex mu;
  int guarded = 0;
  int unguarded = 0;
  // Each thread touches `unguarded` after its critical section: whichever
  // order they run in, neither increment happens before the other.
  auto work = [&] {
    {
      absl::MutexLock lock(&mu);
      ++guarded;
    }
    ++unguarded;
  };
  std::thread other(work);
  work();
  other.join();
  return guarded + unguarded == 4 ? 0 : 1;
}
