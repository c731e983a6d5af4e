#include "server/runtime/torch_error_text.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fusion::runtime {
namespace {

constexpr char kDetailUrl[] = "type.fusion.dev/torch-error-text";

}  // namespace

std::string ConciseTorchError(absl::string_view what) {
  absl::string_view last;
  for (absl::string_view line : absl::StrSplit(what, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) last = line;
  }
  absl::ConsumePrefix(&last, "builtins.");
  if (last.size() <= kMaxTorchErrorBytes) return std::string(last);
  size_t cut = kMaxTorchErrorBytes;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(last[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return absl::StrCat(last.substr(0, cut), "...");
}

absl::Status TorchFailure(absl::string_view what,
                          absl::string_view torch_text) {
  const std::string concise = ConciseTorchError(torch_text);
  absl::Status status = absl::InternalError(absl::StrCat(
      what, " failed: ", concise.empty() ? "(no message)" : concise));
  if (absl::StripAsciiWhitespace(torch_text) != concise) {
    status.SetPayload(kDetailUrl, absl::Cord(torch_text));
  }
  return status;
}

std::optional<std::string> TorchErrorDetail(const absl::Status& status) {
  const auto detail = status.GetPayload(kDetailUrl);
  if (!detail) return std::nullopt;
  return std::string(*detail);
}

}  // namespace fusion::runtime
