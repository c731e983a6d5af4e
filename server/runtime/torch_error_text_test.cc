#include "server/runtime/torch_error_text.h"

#include <gtest/gtest.h>

#include <string>

namespace fusion::runtime {
namespace {

// What LibTorch 1.13 says when a scripted model raises (abridged paths).
constexpr char kScriptRaise[] =
    "The following operation failed in the TorchScript interpreter.\n"
    "Traceback of TorchScript, serialized code (most recent call last):\n"
    "  File \"code/__torch__.py\", line 15, in forward\n"
    "    if bool(_1):\n"
    "      ops.prim.RaiseException(_0, \"builtins.RuntimeError\")\n"
    "      ~~~~~~~~~~~~~~~~~~~~~~~ <--- HERE\n"
    "\n"
    "Traceback of TorchScript, original code (most recent call last):\n"
    "  File \"/tmp/throwing_bundle.py\", line 9, in forward\n"
    "        raise RuntimeError(\"poisoned input: a feature is -12345\")\n"
    "builtins.RuntimeError: poisoned input: a feature is -12345\n";

TEST(ConciseTorchError, KeepsTheLastLineOfATraceback) {
  EXPECT_EQ(ConciseTorchError(kScriptRaise),
            "RuntimeError: poisoned input: a feature is -12345");
  EXPECT_EQ(ConciseTorchError("index out of range in self"),
            "index out of range in self");
  EXPECT_EQ(ConciseTorchError("  \n\n"), "");
}

TEST(ConciseTorchError, CutsALongLineOnACharacterBoundary) {
  // "é" is two bytes: the cut at kMaxTorchErrorBytes falls inside one.
  std::string line = "x";
  while (line.size() < 2 * kMaxTorchErrorBytes) line += "é";
  const std::string concise = ConciseTorchError(line);
  ASSERT_LE(concise.size(), kMaxTorchErrorBytes + 3);
  EXPECT_EQ(concise.substr(concise.size() - 3), "...");
  EXPECT_EQ(concise[concise.size() - 4], '\xA9');  // a whole "é" before it
}

TEST(TorchFailure, IsInternalWithTheWholeTextBesideIt) {
  const absl::Status status = TorchFailure("model forward", kScriptRaise);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(status.message(),
            "model forward failed: RuntimeError: poisoned input: a feature is "
            "-12345");
  EXPECT_EQ(TorchErrorDetail(status), kScriptRaise);
  // A one-line error needs nothing beside it.
  const absl::Status short_one = TorchFailure("model forward", "bad shape");
  EXPECT_EQ(short_one.message(), "model forward failed: bad shape");
  EXPECT_EQ(TorchErrorDetail(short_one), std::nullopt);
  EXPECT_EQ(TorchErrorDetail(absl::InternalError("x")), std::nullopt);
}

}  // namespace
}  // namespace fusion::runtime
