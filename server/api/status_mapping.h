// The one place where internal absl::Status becomes a gRPC status.
#ifndef FUSION_SERVER_API_STATUS_MAPPING_H_
#define FUSION_SERVER_API_STATUS_MAPPING_H_

#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/status/status.h"

namespace fusion::api {

// A message longer than kMaxStatusMessageBytes is cut there (at a UTF-8
// boundary) and says so: it travels in a header, and a client refuses
// headers over 8 KiB with a RESOURCE_EXHAUSTED of its own, hiding the
// real status (e.g. an error quoting a 64 KiB model name).
inline constexpr size_t kMaxStatusMessageBytes = 1024;
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_STATUS_MAPPING_H_
