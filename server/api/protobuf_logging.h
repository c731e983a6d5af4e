// Routes protobuf's own log lines through the server's logger, at most one
// per second (the rest are counted and reported with the next line). A
// client sending requests protobuf cannot parse (e.g. invalid UTF-8) would
// otherwise write one stderr line per request.
#ifndef FUSION_SERVER_API_PROTOBUF_LOGGING_H_
#define FUSION_SERVER_API_PROTOBUF_LOGGING_H_

#include <string>

#include "absl/time/time.h"

namespace fusion::api {

// Installs the handler process-wide. Call once, before serving (protobuf's
// SetLogHandler is not thread-safe).
void RouteProtobufLogs();

// The rate limiter behind it, exposed for tests: returns the line to log for
// a message arriving at `now` ("" when it is suppressed).
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration interval) : interval_(interval) {}
  std::string Admit(const std::string& message, absl::Time now);

 private:
  const absl::Duration interval_;
  absl::Time last_ = absl::InfinitePast();
  int suppressed_ = 0;
};

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_PROTOBUF_LOGGING_H_
