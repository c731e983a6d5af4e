#include "server/api/protobuf_logging.h"

#include <gtest/gtest.h>

namespace fusion::api {
namespace {

TEST(LogRateLimiterTest, OneLinePerIntervalAndCountsTheRest) {
  LogRateLimiter limiter(absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(100);
  EXPECT_EQ(limiter.Admit("bad utf-8", t0), "bad utf-8");
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(limiter.Admit("bad utf-8", t0 + absl::Milliseconds(100 * i)), "");
  }
  EXPECT_EQ(limiter.Admit("bad utf-8", t0 + absl::Seconds(1)),
            "bad utf-8 (5 more suppressed)");
  EXPECT_EQ(limiter.Admit("other", t0 + absl::Seconds(3)), "other");
}

}  // namespace
}  // namespace fusion::api
