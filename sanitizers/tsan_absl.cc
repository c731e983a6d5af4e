// Makes Debian's Abseil synchronization visible to ThreadSanitizer.
//
// Debian builds Abseil without -fsanitize=thread, so absl::Mutex and
// absl::Notification synchronize in code TSan never sees: every access to
// data they guard would be reported as a race. This library is linked into
// every executable of a FUSION_SANITIZE=thread build (tsan_absl.cmake),
// which also passes -Wl,--wrap=<symbol> for each function below: the
// project's calls then reach __wrap_<symbol>, which tells TSan what the
// call does (lock, unlock, release, acquire) around __real_<symbol>, the
// library's own function. These are the annotations Abseil makes itself
// when built with TSan (absl/base/internal/tsan_mutex_interface.h); TSan
// ignores memory accesses between a pre_ and its post_ annotation, which is
// where Abseil evaluates Conditions.
//
// Calls made inside other uninstrumented libraries (gRPC's own use of
// Abseil) are not wrapped; TSan sees none of their memory accesses either.
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstddef>
#include <type_traits>

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

template <typename Lock>
auto Locking(Mutex* m, unsigned flags, Lock lock) {
  __tsan_mutex_pre_lock(m, flags);
  const auto result = lock();
  __tsan_mutex_post_lock(m, flags, 0);
  return result;
}

template <typename TryLock>
bool TryLocking(Mutex* m, unsigned flags, TryLock try_lock) {
  __tsan_mutex_pre_lock(m, flags | kTry);
  const bool locked = try_lock();
  __tsan_mutex_post_lock(m, flags | kTry | (locked ? 0 : kTryFailed), 0);
  return locked;
}

template <typename Unlock>
void Unlocking(Mutex* m, unsigned flags, Unlock unlock) {
  __tsan_mutex_pre_unlock(m, flags);
  unlock();
  __tsan_mutex_post_unlock(m, flags);
}

// Await*: releases `m`, waits, holds it again. Annotated as an unlock that
// lasts until the call returns, then a lock: the Condition evaluations
// inside (this thread's, holding the real mutex) are ignored, as in Unlock.
template <typename Wait>
auto Waiting(Mutex* m, Wait wait) {
  __tsan_mutex_pre_unlock(m, 0);
  const auto result = wait();
  __tsan_mutex_post_unlock(m, 0);
  __tsan_mutex_pre_lock(m, 0);
  __tsan_mutex_post_lock(m, 0, 0);
  return result;
}

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

}  // namespace

// The wrapped functions, by mangled name (tsan_absl.cmake lists the same):
// R(name) is __real_<name>, the library's function; W(name) is
// __wrap_<name>, what the project's calls reach.
#define REAL(name) __real_##name
#define WRAP(name) __wrap_##name

extern "C" {

// ---- absl::Mutex
#define LOCK_EV _ZN4absl7debian35Mutex4LockEv
#define READER_LOCK_EV _ZN4absl7debian35Mutex10ReaderLockEv
#define UNLOCK_EV _ZN4absl7debian35Mutex6UnlockEv
#define READER_UNLOCK_EV _ZN4absl7debian35Mutex12ReaderUnlockEv
#define TRY_LOCK_EV _ZN4absl7debian35Mutex7TryLockEv
#define READER_TRY_LOCK_EV _ZN4absl7debian35Mutex13ReaderTryLockEv
#define LOCK_WHEN _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE
#define LOCK_WHEN_WITH_TIMEOUT \
  _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE
#define AWAIT _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE
#define AWAIT_WITH_TIMEOUT \
  _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE
#define AWAIT_WITH_DEADLINE \
  _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE
#define MUTEX_DTOR _ZN4absl7debian35MutexD1Ev
// ---- absl::Notification (its Mutex works inside the library)
#define NOTIFY _ZN4absl7debian312Notification6NotifyEv
#define WAIT _ZNK4absl7debian312Notification19WaitForNotificationEv
#define WAIT_WITH_TIMEOUT \
  _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE
#define WAIT_WITH_DEADLINE \
  _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE
#define NOTIFICATION_DTOR _ZN4absl7debian312NotificationD1Ev

// Token pasting needs the macros expanded first.
#define R(name) REAL_(name)
#define W(name) WRAP_(name)
#define REAL_(name) REAL(name)
#define WRAP_(name) WRAP(name)

void R(LOCK_EV)(Mutex*);
void W(LOCK_EV)(Mutex* m) {
  Locking(m, 0, [&] { return (R(LOCK_EV)(m), 0); });
}

void R(READER_LOCK_EV)(Mutex*);
void W(READER_LOCK_EV)(Mutex* m) {
  Locking(m, kRead, [&] { return (R(READER_LOCK_EV)(m), 0); });
}

void R(UNLOCK_EV)(Mutex*);
void W(UNLOCK_EV)(Mutex* m) {
  Unlocking(m, 0, [&] { R(UNLOCK_EV)(m); });
}

void R(READER_UNLOCK_EV)(Mutex*);
void W(READER_UNLOCK_EV)(Mutex* m) {
  Unlocking(m, kRead, [&] { R(READER_UNLOCK_EV)(m); });
}

bool R(TRY_LOCK_EV)(Mutex*);
bool W(TRY_LOCK_EV)(Mutex* m) {
  return TryLocking(m, 0, [&] { return R(TRY_LOCK_EV)(m); });
}

bool R(READER_TRY_LOCK_EV)(Mutex*);
bool W(READER_TRY_LOCK_EV)(Mutex* m) {
  return TryLocking(m, kRead, [&] { return R(READER_TRY_LOCK_EV)(m); });
}

void R(LOCK_WHEN)(Mutex*, const Condition&);
void W(LOCK_WHEN)(Mutex* m, const Condition& c) {
  Locking(m, 0, [&] { return (R(LOCK_WHEN)(m, c), 0); });
}

// Holds the mutex on return, whatever it returns.
bool R(LOCK_WHEN_WITH_TIMEOUT)(Mutex*, const Condition&, Duration);
bool W(LOCK_WHEN_WITH_TIMEOUT)(Mutex* m, const Condition& c, Duration t) {
  return Locking(m, 0, [&] { return R(LOCK_WHEN_WITH_TIMEOUT)(m, c, t); });
}

void R(AWAIT)(Mutex*, const Condition&);
void W(AWAIT)(Mutex* m, const Condition& c) {
  Waiting(m, [&] { return (R(AWAIT)(m, c), 0); });
}

bool R(AWAIT_WITH_TIMEOUT)(Mutex*, const Condition&, Duration);
bool W(AWAIT_WITH_TIMEOUT)(Mutex* m, const Condition& c, Duration t) {
  return Waiting(m, [&] { return R(AWAIT_WITH_TIMEOUT)(m, c, t); });
}

bool R(AWAIT_WITH_DEADLINE)(Mutex*, const Condition&, Time);
bool W(AWAIT_WITH_DEADLINE)(Mutex* m, const Condition& c, Time d) {
  return Waiting(m, [&] { return R(AWAIT_WITH_DEADLINE)(m, c, d); });
}

// TSan creates a mutex at its first annotation (the inline constructor
// makes none: the build compiles Abseil's headers as Abseil was built).
void R(MUTEX_DTOR)(Mutex*);
void W(MUTEX_DTOR)(Mutex* m) {
  __tsan_mutex_destroy(m, 0);
  R(MUTEX_DTOR)(m);
}

void R(NOTIFY)(Notification*);
void W(NOTIFY)(Notification* n) {
  __tsan_release(Flag(n));
  R(NOTIFY)(n);
}

void R(WAIT)(const Notification*);
void W(WAIT)(const Notification* n) {
  R(WAIT)(n);
  __tsan_acquire(Flag(n));
}

bool R(WAIT_WITH_TIMEOUT)(const Notification*, Duration);
bool W(WAIT_WITH_TIMEOUT)(const Notification* n, Duration t) {
  const bool notified = R(WAIT_WITH_TIMEOUT)(n, t);
  if (notified) __tsan_acquire(Flag(n));
  return notified;
}

bool R(WAIT_WITH_DEADLINE)(const Notification*, Time);
bool W(WAIT_WITH_DEADLINE)(const Notification* n, Time d) {
  const bool notified = R(WAIT_WITH_DEADLINE)(n, d);
  if (notified) __tsan_acquire(Flag(n));
  return notified;
}

// Forgets what Notify released at the flag: the address (often on a stack)
// will hold other objects, which must not inherit it.
void R(NOTIFICATION_DTOR)(Notification*);
void W(NOTIFICATION_DTOR)(Notification* n) {
  __tsan_mutex_destroy(Flag(n), 0);
  R(NOTIFICATION_DTOR)(n);
}

}  // extern "C"
