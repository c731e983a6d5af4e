// Minimal leveled logging to stderr (Abseil 20220623 has no absl/log).
// Thread-safe: each line is written with one call.
#ifndef FUSION_SERVER_COMMON_LOG_H_
#define FUSION_SERVER_COMMON_LOG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fusion {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning", "error"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, absl::string_view message);

template <typename... Args>
void Log(LogLevel level, const Args&... args) {
  if (LogEnabled(level)) LogLine(level, absl::StrCat(args...));
}

}  // namespace fusion

#endif  // FUSION_SERVER_COMMON_LOG_H_
