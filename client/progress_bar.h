// A one-line progress indicator on a terminal; silent elsewhere.
// Not thread-safe: call it from one thread at a time.
#ifndef FUSION_CLIENT_PROGRESS_BAR_H_
#define FUSION_CLIENT_PROGRESS_BAR_H_

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace fusion::client {

class ProgressBar {
 public:
  // Draws on `out` only when `enabled` (callers pass isatty(fileno(out))).
  // `total` < 0: unknown, shows a count instead of a bar.
  ProgressBar(std::FILE* out, int64_t total, bool enabled);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() { Finish(); }

  // Redraws at most ~10 times a second.
  void Update(int64_t done, int64_t errors);
  // Clears the line; later Updates draw nothing.
  void Finish();

 private:
  void Draw(int64_t done, int64_t errors);

  std::FILE* const out_;
  const int64_t total_;
  bool enabled_;
  bool drawn_ = false;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace fusion::client

#endif  // FUSION_CLIENT_PROGRESS_BAR_H_
