// Makes Debian's Abseil synchronization visible to ThreadSanitizer.
//
// Debian builds Abseil without -fsanitize=thread, so absl::Mutex and
// absl::Notification synchronize in code TSan never sees: every access to
// data they guard would be reported as a race. This library is linked into
// every executable of a FUSION_SANITIZE=thread build (tsan_absl.cmake),
// which also passes -Wl,--wrap=<symbol> for each function below: the
// project's calls then reach __wrap_<symbol>, which tells TSan what the
// call does (lock, unlock, release, acquire) around __real_<symbol>, the
// library's own function. The annotations are those Abseil makes itself
// when it is built with TSan (absl/base/internal/tsan_mutex_interface.h).
//
// Calls made inside other uninstrumented libraries (gRPC's own use of
// Abseil) are not wrapped; TSan sees none of their memory accesses either.
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstddef>
#include <type_traits>

#include "absl/base/config.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

// The symbol names below carry Abseil's inline namespace.
static_assert(std::is_same_v<absl::Mutex, absl::debian3::Mutex>,
              "Abseil's inline namespace changed: update tsan_absl.cc and "
              "tsan_absl.cmake");

namespace {

using absl::Condition;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;

// Notification's members (absl/synchronization/notification.h): the flag
// HasBeenNotified() reads inline, with acquire, in instrumented code.
struct NotificationLayout {
  Mutex mutex;
  std::atomic<bool> notified_yet;
};
static_assert(sizeof(NotificationLayout) == sizeof(Notification));

void* Flag(const Notification* n) {
  return const_cast<char*>(reinterpret_cast<const char*>(n)) +
         offsetof(NotificationLayout, notified_yet);
}

// A wait that releases `m` and holds it again on return.
void BeforeWait(Mutex* m, unsigned flags) {
  __tsan_mutex_pre_unlock(m, flags);
  __tsan_mutex_post_unlock(m, flags);
}
void AfterWait(Mutex* m, unsigned flags) {
  __tsan_mutex_pre_lock(m, flags);
  __tsan_mutex_post_lock(m, flags, 0);
}

}  // namespace

#define REAL(name) __real_##name
#define WRAP(name) __wrap_##name

extern "C" {

// ---- absl::Mutex
void REAL(_ZN4absl7debian35Mutex4LockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex4LockEv)(Mutex* m) {
  __tsan_mutex_pre_lock(m, 0);
  REAL(_ZN4absl7debian35Mutex4LockEv)(m);
  __tsan_mutex_post_lock(m, 0, 0);
}

void REAL(_ZN4absl7debian35Mutex10ReaderLockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex10ReaderLockEv)(Mutex* m) {
  __tsan_mutex_pre_lock(m, kRead);
  REAL(_ZN4absl7debian35Mutex10ReaderLockEv)(m);
  __tsan_mutex_post_lock(m, kRead, 0);
}

// The unlocking thread may evaluate waiters' Conditions inside the call;
// TSan ignores accesses between pre and post, as Abseil's own annotations.
void REAL(_ZN4absl7debian35Mutex6UnlockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex6UnlockEv)(Mutex* m) {
  __tsan_mutex_pre_unlock(m, 0);
  REAL(_ZN4absl7debian35Mutex6UnlockEv)(m);
  __tsan_mutex_post_unlock(m, 0);
}

void REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex12ReaderUnlockEv)(Mutex* m) {
  __tsan_mutex_pre_unlock(m, kRead);
  REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv)(m);
  __tsan_mutex_post_unlock(m, kRead);
}

bool REAL(_ZN4absl7debian35Mutex7TryLockEv)(Mutex*);
bool WRAP(_ZN4absl7debian35Mutex7TryLockEv)(Mutex* m) {
  __tsan_mutex_pre_lock(m, kTry);
  const bool locked = REAL(_ZN4absl7debian35Mutex7TryLockEv)(m);
  __tsan_mutex_post_lock(m, kTry | (locked ? 0 : kTryFailed), 0);
  return locked;
}

bool REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv)(Mutex*);
bool WRAP(_ZN4absl7debian35Mutex13ReaderTryLockEv)(Mutex* m) {
  __tsan_mutex_pre_lock(m, kRead | kTry);
  const bool locked = REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv)(m);
  __tsan_mutex_post_lock(m, kRead | kTry | (locked ? 0 : kTryFailed), 0);
  return locked;
}

void REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE)(Mutex*,
                                                             const Condition&);
void WRAP(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE)(
    Mutex* m, const Condition& c) {
  __tsan_mutex_pre_lock(m, 0);
  REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE)(m, c);
  __tsan_mutex_post_lock(m, 0, 0);
}

// LockWhenWithTimeout holds the mutex on return, whatever it returns.
bool REAL(
    _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex*, const Condition&, Duration);
bool WRAP(
    _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex* m, const Condition& c, Duration timeout) {
  __tsan_mutex_pre_lock(m, 0);
  const bool met = REAL(
      _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
      m, c, timeout);
  __tsan_mutex_post_lock(m, 0, 0);
  return met;
}

void REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE)(Mutex*,
                                                          const Condition&);
void WRAP(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE)(Mutex* m,
                                                          const Condition& c) {
  BeforeWait(m, 0);
  REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE)(m, c);
  AfterWait(m, 0);
}

bool REAL(
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex*, const Condition&, Duration);
bool WRAP(
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex* m, const Condition& c, Duration timeout) {
  BeforeWait(m, 0);
  const bool met = REAL(
      _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
      m, c, timeout);
  AfterWait(m, 0);
  return met;
}

bool REAL(
    _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex*, const Condition&, Time);
bool WRAP(
    _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex* m, const Condition& c, Time deadline) {
  BeforeWait(m, 0);
  const bool met = REAL(
      _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
      m, c, deadline);
  AfterWait(m, 0);
  return met;
}

// The constructor is inline and tells TSan itself (ABSL_TSAN_MUTEX_CREATE).
void REAL(_ZN4absl7debian35MutexD1Ev)(Mutex*);
void WRAP(_ZN4absl7debian35MutexD1Ev)(Mutex* m) {
  __tsan_mutex_destroy(m, 0);
  REAL(_ZN4absl7debian35MutexD1Ev)(m);
}

// ---- absl::Notification (its Mutex works inside the library)
void REAL(_ZN4absl7debian312Notification6NotifyEv)(Notification*);
void WRAP(_ZN4absl7debian312Notification6NotifyEv)(Notification* n) {
  __tsan_release(Flag(n));
  REAL(_ZN4absl7debian312Notification6NotifyEv)(n);
}

void REAL(_ZNK4absl7debian312Notification19WaitForNotificationEv)(
    const Notification*);
void WRAP(_ZNK4absl7debian312Notification19WaitForNotificationEv)(
    const Notification* n) {
  REAL(_ZNK4absl7debian312Notification19WaitForNotificationEv)(n);
  __tsan_acquire(Flag(n));
}

bool REAL(
    _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(
    const Notification*, Duration);
bool WRAP(
    _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(
    const Notification* n, Duration timeout) {
  const bool notified = REAL(
      _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(
      n, timeout);
  if (notified) __tsan_acquire(Flag(n));
  return notified;
}

bool REAL(
    _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(
    const Notification*, Time);
bool WRAP(
    _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(
    const Notification* n, Time deadline) {
  const bool notified = REAL(
      _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(
      n, deadline);
  if (notified) __tsan_acquire(Flag(n));
  return notified;
}

// Its inline constructor created a TSan mutex for its Mutex member.
void REAL(_ZN4absl7debian312NotificationD1Ev)(Notification*);
void WRAP(_ZN4absl7debian312NotificationD1Ev)(Notification* n) {
  __tsan_mutex_destroy(n, 0);
  REAL(_ZN4absl7debian312NotificationD1Ev)(n);
}

}  // extern "C"
