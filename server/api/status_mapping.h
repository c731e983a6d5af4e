// The one place where internal absl::Status becomes a gRPC status.
#ifndef FUSION_SERVER_API_STATUS_MAPPING_H_
#define FUSION_SERVER_API_STATUS_MAPPING_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace fusion::api {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_STATUS_MAPPING_H_
