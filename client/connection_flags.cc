#include "client/connection_flags.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/cli/argv_util.h"

ABSL_FLAG(std::string, target, "localhost:50051",
          "Server address: host:port, dns:///host:port, ipv4:a:p,b:p or a "
          "comma-separated list of IP:port");
ABSL_FLAG(std::string, lb, "",
          "Client-side load balancing over the target's addresses: "
          "round_robin or pick_first (default: gRPC's, pick_first)");
ABSL_FLAG(bool, tls, false, "Use TLS");
ABSL_FLAG(std::string, ca_file, "",
          "PEM file of CA certificates for TLS (default: system roots)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate (chain) for servers that require one "
          "(mutual TLS); with --tls_key and --tls");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key (unencrypted) of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the server certificate must carry, if not the target's host");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "Deadline of each unary call, retries included");
ABSL_FLAG(int, retries, 3,
          "Retries of a unary call that failed with UNAVAILABLE (exponential "
          "backoff from 50ms)");
ABSL_FLAG(std::vector<std::string>, header, {},
          "Extra request metadata KEY=VALUE; repeat the flag for more");

namespace fusion::client {

absl::StatusOr<ClientOptions> ClientOptionsFromFlags(
    const std::vector<std::string>& headers) {
  ClientOptions options;
  options.connection.target = absl::GetFlag(FLAGS_target);
  options.connection.lb_policy = absl::GetFlag(FLAGS_lb);
  options.connection.tls = absl::GetFlag(FLAGS_tls);
  options.connection.ca_file = absl::GetFlag(FLAGS_ca_file);
  options.connection.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.connection.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.connection.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  const int retries = absl::GetFlag(FLAGS_retries);
  if (retries < 0) {
    return absl::InvalidArgumentError("--retries must be >= 0");
  }
  options.retry.max_attempts = retries + 1;
  for (const std::string& header : headers) {
    const size_t eq = header.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--header '", header, "': expected KEY=VALUE"));
    }
    options.metadata.emplace_back(header.substr(0, eq), header.substr(eq + 1));
  }
  return options;
}

std::string DescribeError(const absl::Status& status,
                          const ClientOptions& options) {
  const std::string& target = options.connection.target;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return absl::StrCat("cannot reach fusion-server at ", target, " (",
                          status.message(), ")");
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat("no answer from ", target, " within ",
                          absl::FormatDuration(options.timeout), " (",
                          status.message(), ")");
    default:
      return absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                          status.message());
  }
}

}  // namespace fusion::client

namespace fusion::client {

std::vector<std::string> ParseCommandLineKeepingRepeated(
    int argc, char** argv, const std::vector<std::string>& repeated,
    std::vector<std::vector<std::string>>& repeated_values) {
  std::vector<std::string> args(argv, argv + argc);
  repeated_values.clear();
  for (const std::string& name : repeated) {
    repeated_values.push_back(ExtractRepeatedFlag(args, name));
  }
  std::vector<char*> rest;
  for (std::string& arg : args) rest.push_back(arg.data());
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());
  return {positional.begin(), positional.end()};
}

}  // namespace fusion::client
