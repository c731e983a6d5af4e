// Process-wide request limits that validation enforces, set once at start-up
// from flags (ServerApp) before any request is served, read by every request
// thread afterwards. A process setting rather than a per-model one: it
// protects the process, whatever model a request names.
#ifndef FUSION_SERVER_SECURITY_REQUEST_LIMITS_H_
#define FUSION_SERVER_SECURITY_REQUEST_LIMITS_H_

#include <atomic>
#include <cstdint>

namespace fusion::security {

// The default of --max_text_bytes: 64 KiB, over a hundred times what a
// 128-token model reads, so no real text is refused, while a request can
// no longer make the tokenizer scan megabytes of input it will never use.
inline constexpr int64_t kDefaultMaxTextBytes = int64_t{64} << 10;

namespace internal {
inline std::atomic<int64_t> max_text_bytes{kDefaultMaxTextBytes};
}  // namespace internal

// A request's `text` longer than this (in bytes, UTF-8) is refused with
// INVALID_ARGUMENT before it is tokenized.
inline void SetMaxTextBytes(int64_t bytes) {
  internal::max_text_bytes.store(bytes, std::memory_order_relaxed);
}
inline int64_t MaxTextBytes() {
  return internal::max_text_bytes.load(std::memory_order_relaxed);
}

}  // namespace fusion::security

#endif  // FUSION_SERVER_SECURITY_REQUEST_LIMITS_H_
