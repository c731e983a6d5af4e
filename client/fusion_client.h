// fusion::Client: a blocking client for fusionserve's ScoringService and the
// standard grpc.health.v1 service.
//
// Thread-safety: every method is const and may be called from any number of
// threads at once (gRPC stubs and channels are thread-safe).
// Errors: gRPC statuses become absl::Status with the same code and message.
// Unary calls are retried on UNAVAILABLE only (the request reached no model)
// with exponential backoff and jitter, at most RetryOptions::max_attempts
// attempts, all inside one deadline (ClientOptions::timeout).
//
// Bulk scoring over ScoreStream lives in stream_scorer.h.
#ifndef FUSION_CLIENT_FUSION_CLIENT_H_
#define FUSION_CLIENT_FUSION_CLIENT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/channel_config.h"
#include "client/retry_policy.h"
#include "fusion/v1/scoring.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "health.grpc.pb.h"

namespace fusion {

struct ClientOptions {
  client::ConnectionOptions connection;
  // Deadline of one call, retries and backoff included.
  // absl::InfiniteDuration(): no deadline.
  absl::Duration timeout = absl::Seconds(10);
  client::RetryOptions retry;
  // Extra request headers sent with every call, e.g. {"x-tenant", "a"}.
  // Keys are lower-cased; they may hold [0-9a-z-_.] and must not start with
  // "grpc-"; values must be printable ASCII unless the key ends in "-bin".
  std::vector<std::pair<std::string, std::string>> metadata;
};

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class ServingStatus { kUnknown, kServing, kNotServing, kServiceUnknown };
const char* ServingStatusName(ServingStatus status);

// grpc::Status -> absl::Status (same numeric code and message).
absl::Status FromGrpcStatus(const grpc::Status& status);

class Client {
 public:
  // Validates `options` (INVALID_ARGUMENT naming what is wrong, NOT_FOUND for
  // an unreadable CA file) and creates the channel. Does not connect.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  // Scores one request. UNAVAILABLE after the last attempt says how many
  // attempts were made; DEADLINE_EXCEEDED when `timeout` ran out.
  absl::StatusOr<fusion::v1::ScoreResponse> Score(
      const fusion::v1::ScoreRequest& request) const;

  // Empty model / version: the server's default model, its latest version.
  absl::StatusOr<fusion::v1::ModelMetadata> GetModelMetadata(
      const std::string& model = "", const std::string& version = "") const;

  // grpc.health.v1.Health/Check; "" asks about the whole server.
  absl::StatusOr<ServingStatus> CheckHealth(
      const std::string& service = "") const;

  // Connects now; UNAVAILABLE if no connection is up within `timeout`.
  absl::Status WaitForConnected(absl::Duration timeout) const;

  // Applies the deadline (InfiniteFuture: none) and the metadata; for callers
  // that drive the stub themselves (streams, async calls).
  void ConfigureContext(grpc::ClientContext* context,
                        absl::Time deadline) const;

  // The deadline a call started now gets from ClientOptions::timeout.
  absl::Time DeadlineFromNow() const;

  fusion::v1::ScoringService::Stub& stub() const { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel);

  // Runs `attempt(context)` until it succeeds, fails with a non-retryable
  // code, runs out of attempts or the deadline would pass while backing off.
  template <typename Attempt>
  absl::Status CallWithRetries(Attempt attempt) const;

  const ClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<fusion::v1::ScoringService::Stub> stub_;
  const std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
};

}  // namespace fusion

#endif  // FUSION_CLIENT_FUSION_CLIENT_H_
