# Included by the root CMakeLists.txt when FUSION_SANITIZE has "thread":
# routes the project's calls to Abseil's Mutex and Notification through
# tsan_absl.cc, which annotates them for ThreadSanitizer (Debian's Abseil is
# not instrumented). Must come before any target is defined.
set(FUSION_TSAN_ABSL_WRAPPED
  _ZN4absl7debian35Mutex4LockEv
  _ZN4absl7debian35Mutex10ReaderLockEv
  _ZN4absl7debian35Mutex6UnlockEv
  _ZN4absl7debian35Mutex12ReaderUnlockEv
  _ZN4absl7debian35Mutex7TryLockEv
  _ZN4absl7debian35Mutex13ReaderTryLockEv
  _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE
  _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE
  _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE
  _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE
  _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE
  _ZN4absl7debian35MutexD1Ev
  _ZN4absl7debian312Notification6NotifyEv
  _ZNK4absl7debian312Notification19WaitForNotificationEv
  _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE
  _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE
  _ZN4absl7debian312NotificationD1Ev)
foreach(symbol IN LISTS FUSION_TSAN_ABSL_WRAPPED)
  add_link_options(-Wl,--wrap=${symbol})
endforeach()
# Shared, so that the __wrap_ symbols resolve wherever it sits on a link
# line (static libraries listed after it reference them too).
add_library(fusion_tsan_absl SHARED ${CMAKE_CURRENT_LIST_DIR}/tsan_absl.cc)
target_link_libraries(fusion_tsan_absl PRIVATE absl::synchronization
  absl::time)
link_libraries(fusion_tsan_absl)
