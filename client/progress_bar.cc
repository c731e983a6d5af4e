#include "client/progress_bar.h"

#include <algorithm>
#include <string>

namespace fusion::client {

ProgressBar::ProgressBar(std::FILE* out, int64_t total, bool enabled)
    : out_(out),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::Update(int64_t done, int64_t errors) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) &&
      done != total_) {
    return;
  }
  last_draw_ = now;
  Draw(done, errors);
}

void ProgressBar::Draw(int64_t done, int64_t errors) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
          .count();
  const double rate = elapsed > 0 ? done / elapsed : 0.0;
  if (total_ > 0) {
    constexpr int kWidth = 30;
    const double fraction = std::min(1.0, static_cast<double>(done) / total_);
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(filled, '#');
    bar.append(kWidth - filled, '.');
    std::fprintf(out_, "\r[%s] %3.0f%% %lld/%lld  %.0f/s  errors %lld\033[K",
                 bar.c_str(), fraction * 100, static_cast<long long>(done),
                 static_cast<long long>(total_), rate,
                 static_cast<long long>(errors));
  } else {
    std::fprintf(out_, "\rscored %lld  %.0f/s  errors %lld\033[K",
                 static_cast<long long>(done), rate,
                 static_cast<long long>(errors));
  }
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (enabled_ && drawn_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
  enabled_ = false;
}

}  // namespace fusion::client
