// A gRPC call's deadline as absl::Time: InfiniteFuture() when it has none.
#ifndef FUSION_SERVER_API_RPC_DEADLINE_H_
#define FUSION_SERVER_API_RPC_DEADLINE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/time/time.h"

namespace fusion::api {

inline absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  return deadline == std::chrono::system_clock::time_point::max()
             ? absl::InfiniteFuture()
             : absl::FromChrono(deadline);
}

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_RPC_DEADLINE_H_
