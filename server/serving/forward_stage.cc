#include "server/serving/forward_stage.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "server/common/log.h"

namespace fusion::serving {

ForwardStage::ForwardStage(int instances) : instances_(std::max(1, instances)) {
  for (int i = 0; i < instances_; ++i) {
    threads_.emplace_back([this] {
#ifdef __linux__
      pthread_setname_np(pthread_self(), "forward");  // for top and perf
#endif
      Loop();
    });
  }
}

ForwardStage::~ForwardStage() { Shutdown(); }

void ForwardStage::Hand(Job job) {
  std::unique_lock<std::mutex> lock(mu_);
  free_cv_.wait(lock, [this] { return busy_ < instances_ || stopping_; });
  if (stopping_) {
    lock.unlock();  // the threads may already be gone
    std::move(job)();
    return;
  }
  ++busy_;
  jobs_.push_back(std::move(job));
  job_cv_.notify_one();
}

void ForwardStage::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    job_cv_.notify_all();
    free_cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(join_mu_);
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

// Runs jobs until stopping with none left.
void ForwardStage::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    job_cv_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
    if (jobs_.empty()) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    // Isolated as the scheduler isolates its executor: one bad batch must not
    // end the thread. Destroying the job completes what it still owns.
    try {
      std::move(job)();
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "forward job threw: ", e.what());
    } catch (...) {
      Log(LogLevel::kError, "forward job threw a non-std exception");
    }
    job = nullptr;
    lock.lock();
    --busy_;
    free_cv_.notify_one();
  }
}

}  // namespace fusion::serving
