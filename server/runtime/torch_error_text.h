// Torch's error text made fit for a client. A TorchScript error carries the
// interpreter's tracebacks (serialized and original code, tens of lines,
// the model's source paths); its last line names the error itself. The
// client gets that line; the log gets the whole text. No Torch here.
#ifndef FUSION_SERVER_RUNTIME_TORCH_ERROR_TEXT_H_
#define FUSION_SERVER_RUNTIME_TORCH_ERROR_TEXT_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fusion::runtime {

// At most this many bytes of Torch's text reach a client.
inline constexpr size_t kMaxTorchErrorBytes = 300;

// The last non-empty line of `what`, "builtins." dropped from a Python
// exception's name ("RuntimeError: poisoned input"), cut to
// kMaxTorchErrorBytes (on a UTF-8 boundary, "..." appended).
std::string ConciseTorchError(absl::string_view what);

// An INTERNAL status "<what> failed: <concise error>" that carries Torch's
// whole text as a payload when it says more than the message.
absl::Status TorchFailure(absl::string_view what, absl::string_view torch_text);

// The whole text TorchFailure kept, if any.
std::optional<std::string> TorchErrorDetail(const absl::Status& status);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_TORCH_ERROR_TEXT_H_
