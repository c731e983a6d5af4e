// fusion-client: score requests, print their v2 form, read model metadata,
// check health.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "client/cli/commands.h"
#include "client/connection_flags.h"

namespace {

constexpr char kUsage[] = R"(fusion-client COMMAND [flags]

Commands:
  score     --text "..." --feature NAME=VALUE ... [--attention mean|per-head]
            [--show]                       one request, JSON on stdout
  score     --input FILE.jsonl [--output OUT.jsonl]
                                           a file (or - for stdin) over
                                           ScoreStream, results in input order
  v2-request --text "..." --feature NAME=VALUE ... [--attention ...]
            [--priority N] [--format json|text] [--v2_raw]
            [--feature_order NAME,...]     the Open Inference Protocol (KServe
                                           v2) request for the same input,
                                           printed, not sent (--input FILE:
                                           one per line)
  metadata  [--model NAME]                 the model's metadata as JSON
  health    [--service NAME]               grpc.health.v1 status

Connection: --target host:port | dns:///host:port | ipv4:a:p,b:p
            [--lb round_robin] [--tls --ca_file ca.pem] [--header k=v]
Exit codes: 0 ok, 1 the server answered an error, 2 usage or input syntax,
            3 server unreachable or stream broken.)";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::vector<std::string>> repeated;
  const std::vector<std::string> positional =
      fusion::client::ParseCommandLineKeepingRepeated(
          argc, argv, {"feature", "header"}, repeated);
  const std::vector<std::string>& features = repeated[0];
  const std::vector<std::string>& headers = repeated[1];

  if (positional.size() != 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return fusion::client::kExitUsage;
  }
  const std::string command = positional[1];
  if (command != "score" && command != "v2-request" && command != "metadata" &&
      command != "health") {
    std::fprintf(stderr, "fusion-client: unknown command '%s'\n\n%s\n",
                 command.c_str(), kUsage);
    return fusion::client::kExitUsage;
  }
  if (command != "score" && command != "v2-request" && !features.empty()) {
    std::fprintf(stderr,
                 "fusion-client: --feature is for score and v2-request\n");
    return fusion::client::kExitUsage;
  }

  absl::StatusOr<fusion::ClientOptions> options =
      fusion::client::ClientOptionsFromFlags(headers);
  if (!options.ok()) {
    std::fprintf(stderr, "fusion-client: %s\n",
                 std::string(options.status().message()).c_str());
    return fusion::client::kExitUsage;
  }
  absl::StatusOr<std::unique_ptr<fusion::Client>> client =
      fusion::Client::Create(*std::move(options));
  if (!client.ok()) {
    std::fprintf(stderr, "fusion-client: %s\n",
                 std::string(client.status().message()).c_str());
    return fusion::client::kExitUsage;
  }
  if (command == "score") return fusion::client::RunScore(**client, features);
  if (command == "v2-request") {
    return fusion::client::RunV2Request(**client, features);
  }
  if (command == "metadata") return fusion::client::RunMetadata(**client);
  return fusion::client::RunHealth(**client);
}
