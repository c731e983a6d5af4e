#include "server/api/protobuf_logging.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/stubs/logging.h"
#include "server/common/log.h"

namespace fusion::api {
namespace {

std::mutex g_mu;
LogRateLimiter* g_limiter = nullptr;

void Handle(google::protobuf::LogLevel level, const char* /*file*/,
            int /*line*/, const std::string& message) {
  std::string line;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    line = g_limiter->Admit(message, absl::Now());
  }
  if (line.empty()) return;
  Log(level >= google::protobuf::LOGLEVEL_ERROR ? LogLevel::kWarning
                                                : LogLevel::kInfo,
      "protobuf: ", line);
}

}  // namespace

std::string LogRateLimiter::Admit(const std::string& message, absl::Time now) {
  if (now - last_ < interval_) {
    ++suppressed_;
    return "";
  }
  last_ = now;
  std::string line = message;
  if (suppressed_ > 0) {
    absl::StrAppend(&line, " (", suppressed_, " more suppressed)");
    suppressed_ = 0;
  }
  return line;
}

void RouteProtobufLogs() {
  static LogRateLimiter* const limiter = new LogRateLimiter(absl::Seconds(1));
  g_limiter = limiter;
  google::protobuf::SetLogHandler(&Handle);
}

}  // namespace fusion::api
