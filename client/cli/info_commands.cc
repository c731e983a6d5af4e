// fusion-client metadata | health.
#include <cstdio>
#include <iostream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "client/cli/commands.h"
#include "client/connection_flags.h"
#include "client/request_json.h"

ABSL_FLAG(std::string, service, "",
          "Service whose health to check (health; default: the whole server)");
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, model_version);

namespace fusion::client {
namespace {

int Fail(const absl::Status& status, const Client& client) {
  std::fprintf(stderr, "fusion-client: %s\n",
               DescribeError(status, client.options()).c_str());
  return status.code() == absl::StatusCode::kUnavailable ? kExitUnreachable
                                                         : kExitRequestFailed;
}

}  // namespace

int RunMetadata(const Client& client) {
  absl::StatusOr<fusion::v1::ModelMetadata> metadata = client.GetModelMetadata(
      absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_model_version));
  if (!metadata.ok()) return Fail(metadata.status(), client);
  std::cout << MetadataToJson(*metadata).dump(2) << std::endl;
  return kExitOk;
}

int RunHealth(const Client& client) {
  const std::string service = absl::GetFlag(FLAGS_service);
  absl::StatusOr<ServingStatus> status = client.CheckHealth(service);
  if (!status.ok()) return Fail(status.status(), client);
  const nlohmann::json out = {{"service", service},
                              {"status", ServingStatusName(*status)}};
  std::cout << out.dump() << std::endl;
  return *status == ServingStatus::kServing ? kExitOk : kExitRequestFailed;
}

}  // namespace fusion::client
