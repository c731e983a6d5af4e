// Command-line flags shared by fusion-client and fusion-bench: where the
// server is and how to talk to it (--target, --lb, --tls, --ca_file,
// --tls_cert, --tls_key, --tls_server_name, --timeout, --retries, --header).
#ifndef FUSION_CLIENT_CONNECTION_FLAGS_H_
#define FUSION_CLIENT_CONNECTION_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/fusion_client.h"

namespace fusion::client {

// Client options from the flags. `headers` are the --header values
// ("key=value"), taken out of argv before absl parses it (see argv_util.h).
// INVALID_ARGUMENT for a malformed header.
absl::StatusOr<ClientOptions> ClientOptionsFromFlags(
    const std::vector<std::string>& headers);

// Parses the command line with absl flags after taking every occurrence of
// the `repeated` flags out of it (absl keeps only the last one; see
// argv_util.h). Returns the positional arguments, argv[0] first; the
// repeated values land in `repeated_values`, one vector per name, in order.
std::vector<std::string> ParseCommandLineKeepingRepeated(
    int argc, char** argv, const std::vector<std::string>& repeated,
    std::vector<std::vector<std::string>>& repeated_values);

// One line for a failed call, worded for the person at the terminal:
// UNAVAILABLE -> "cannot reach fusion-server at TARGET (...)",
// DEADLINE_EXCEEDED -> "no answer from TARGET within T", else
// "CODE: message".
std::string DescribeError(const absl::Status& status,
                          const ClientOptions& options);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_CONNECTION_FLAGS_H_
