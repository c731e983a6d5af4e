// FUZZ_CHECK(condition, message...): a broken invariant is a crash, so that
// libFuzzer keeps the input as an artifact and the replay test fails. Used
// by the fuzz targets only; the code under test reports errors by status.
#ifndef FUSION_TESTS_FUZZ_FUZZ_CHECK_H_
#define FUSION_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

#define FUZZ_CHECK(condition, ...)                                           \
  do {                                                                       \
    if (!(condition)) {                                                      \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__,   \
                   __LINE__, #condition, absl::StrCat(__VA_ARGS__).c_str()); \
      std::abort();                                                          \
    }                                                                        \
  } while (false)

#endif  // FUSION_TESTS_FUZZ_FUZZ_CHECK_H_
