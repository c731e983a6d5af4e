// fusion-client's subcommands. Each returns the process exit code and
// prints results to stdout, messages to stderr.
#ifndef FUSION_CLIENT_CLI_COMMANDS_H_
#define FUSION_CLIENT_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "client/fusion_client.h"

namespace fusion::client {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRequestFailed = 1;  // the server answered an error
inline constexpr int kExitUsage = 2;          // bad flags or input syntax
inline constexpr int kExitUnreachable = 3;    // no server, or stream broken

// score: one request from --text/--feature (prints JSON, or a table with
// --show), or a JSON-lines file from --input (see score_file.cc).
// `features` are the --feature values in order.
int RunScore(const Client& client, const std::vector<std::string>& features);

// The one request --text, --feature, --attention, --priority, --request_id,
// --model, --model_version and --fill_missing describe (score and
// v2-request). `metadata`: the model's for --fill_missing, or null to ask
// the server. Returns kExitOk, or an exit code after printing why.
int RequestFromFlags(const Client& client,
                     const std::vector<std::string>& features,
                     const fusion::v1::ModelMetadata* metadata,
                     fusion::v1::ScoreRequest* request);

// v2-request: prints the Open Inference Protocol (KServe v2) request that
// the same input becomes, as REST JSON or protobuf text, without sending it
// (see v2_request_command.cc).
int RunV2Request(const Client& client,
                 const std::vector<std::string>& features);

// score --input: scores a JSON-lines file over ScoreStream.
int RunScoreFile(const Client& client);

// metadata: prints the model's metadata as JSON.
int RunMetadata(const Client& client);

// health: prints {"service": ..., "status": ...}; 0 only when SERVING.
int RunHealth(const Client& client);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_CLI_COMMANDS_H_
