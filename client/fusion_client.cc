#include "client/fusion_client.h"

#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace fusion {
namespace {

absl::Status ValidateMetadata(
    std::vector<std::pair<std::string, std::string>>& metadata) {
  for (auto& [key, value] : metadata) {
    key = absl::AsciiStrToLower(key);
    if (key.empty() || absl::StartsWith(key, "grpc-")) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key '", key, "': empty or reserved (grpc-)"));
    }
    for (char c : key) {
      if (!absl::ascii_isdigit(c) && !absl::ascii_islower(c) && c != '-' &&
          c != '_' && c != '.') {
        return absl::InvalidArgumentError(absl::StrCat(
            "metadata key '", key, "': only 0-9 a-z - _ . are allowed"));
      }
    }
    if (absl::EndsWith(key, "-bin")) continue;
    for (char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metadata value for '", key, "': printable ASCII only"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case ServingStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (absl::Status s = client::ValidateRetryOptions(options.retry); !s.ok()) {
    return s;
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  if (absl::Status s = ValidateMetadata(options.metadata); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      client::CreateChannel(options.connection);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<Client>(
      new Client(std::move(options), *std::move(channel)));
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(fusion::v1::ScoringService::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)) {}

absl::Time Client::DeadlineFromNow() const {
  if (options_.timeout == absl::InfiniteDuration()) {
    return absl::InfiniteFuture();
  }
  return absl::Now() + options_.timeout;
}

void Client::ConfigureContext(grpc::ClientContext* context,
                              absl::Time deadline) const {
  if (deadline != absl::InfiniteFuture()) {
    context->set_deadline(absl::ToChronoTime(deadline));
  }
  for (const auto& [key, value] : options_.metadata) {
    context->AddMetadata(key, value);
  }
}

template <typename Attempt>
absl::Status Client::CallWithRetries(Attempt attempt) const {
  const absl::Time deadline = DeadlineFromNow();
  const client::RetryOptions& retry = options_.retry;
  absl::BitGen random;
  absl::Status status;
  int attempts = 0;
  while (true) {
    ++attempts;
    grpc::ClientContext context;
    ConfigureContext(&context, deadline);
    status = FromGrpcStatus(attempt(context));
    if (status.ok() || !client::IsRetryable(status.code())) return status;
    if (attempts == retry.max_attempts) break;
    const absl::Duration wait = client::BackoffBefore(
        retry, attempts + 1, absl::Uniform<double>(random, 0.0, 1.0));
    if (absl::Now() + wait >= deadline) break;
    absl::SleepFor(wait);
  }
  if (attempts == 1) return status;
  return absl::Status(status.code(),
                      absl::StrCat(status.message(), " (gave up after ",
                                   attempts, " attempts)"));
}

absl::StatusOr<fusion::v1::ScoreResponse> Client::Score(
    const fusion::v1::ScoreRequest& request) const {
  fusion::v1::ScoreResponse response;
  absl::Status status = CallWithRetries([&](grpc::ClientContext& context) {
    return stub_->Score(&context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<fusion::v1::ModelMetadata> Client::GetModelMetadata(
    const std::string& model, const std::string& version) const {
  fusion::v1::GetModelMetadataRequest request;
  request.set_model(model);
  request.set_model_version(version);
  fusion::v1::ModelMetadata response;
  absl::Status status = CallWithRetries([&](grpc::ClientContext& context) {
    return stub_->GetModelMetadata(&context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<ServingStatus> Client::CheckHealth(
    const std::string& service) const {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = CallWithRetries([&](grpc::ClientContext& context) {
    return health_stub_->Check(&context, request, &response);
  });
  if (!status.ok()) return status;
  switch (response.status()) {
    case grpc::health::v1::HealthCheckResponse::SERVING:
      return ServingStatus::kServing;
    case grpc::health::v1::HealthCheckResponse::NOT_SERVING:
      return ServingStatus::kNotServing;
    case grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN:
      return ServingStatus::kServiceUnknown;
    default:
      return ServingStatus::kUnknown;
  }
}

absl::Status Client::WaitForConnected(absl::Duration timeout) const {
  if (channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("no connection to ", options_.connection.target, " within ",
                   absl::FormatDuration(timeout)));
}

}  // namespace fusion
