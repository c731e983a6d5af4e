#include "server/api/scoring_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/api/request_validation.h"
#include "server/api/response_builder.h"
#include "server/api/status_mapping.h"

namespace fusion::api {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

// Parses a request's bytes. On failure `request` holds what could be read
// (its request_id, usually: field 1 comes first on the wire).
absl::Status ParseScoreRequest(const grpc::ByteBuffer& bytes,
                               ScoreRequest& request) {
  grpc::ByteBuffer copy(bytes);  // Deserialize consumes its buffer
  if (grpc::SerializationTraits<ScoreRequest>::Deserialize(&copy, &request)
          .ok()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "ScoreRequest does not parse: malformed protobuf, or a string field "
      "(text, model, request_id, a feature name) that is not valid UTF-8");
}

grpc::ByteBuffer Serialize(const ScoreResponse& response) {
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  grpc::SerializationTraits<ScoreResponse>::Serialize(response, &bytes,
                                                      &own_buffer);
  return bytes;
}

// The RPC's deadline, else the model's default timeout, else none.
absl::Time TaskDeadline(const grpc::CallbackServerContext& context,
                        const fusion::v1::ModelConfig& config,
                        absl::Time arrival) {
  const auto deadline = context.deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    return absl::FromChrono(deadline);
  }
  const int64_t timeout_us = config.batching().default_timeout_us();
  return timeout_us > 0 ? arrival + absl::Microseconds(timeout_us)
                        : absl::InfiniteFuture();
}

absl::StatusOr<serving::ModelRegistry*> AdmittingRegistry(
    const serving::ServingState& state) {
  if (state.draining()) return absl::UnavailableError("server is draining");
  serving::ModelRegistry* registry = state.registry();
  if (registry == nullptr) return absl::UnavailableError("models are loading");
  return registry;
}

// A bidirectional stream: each request read is submitted at once; responses
// are written in completion order, one write in flight at a time.
class ScoreStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ScoreStreamReactor(ScoringServiceImpl* service,
                     grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the stream broke
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        finish = ShouldFinishLocked();
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    ScoreRequest request;
    absl::Status parsed = ParseScoreRequest(request_, request);
    request_.Clear();
    {
      absl::MutexLock lock(&mu_);
      ++outstanding_;
    }
    const std::string id = request.request_id();
    absl::Status submitted =
        parsed.ok() ? service_->SubmitScore(
                          context_, request,
                          [this, id](absl::StatusOr<ScoreResponse> response) {
                            OnScored(id, std::move(response));
                          })
                    : parsed;
    if (!submitted.ok()) OnScored(id, submitted);
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      read_more = outstanding_ < ScoringServiceImpl::kMaxInFlightPerStream;
      read_paused_ = !read_more;
    }
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      writes_.pop_front();
      if (!ok) {  // the client is gone: drop what is left to write
        write_failed_ = true;
        writes_.clear();
      }
      if (!writes_.empty()) {
        next = &writes_.front();
      } else {
        writing_ = false;
      }
      finish = ShouldFinishLocked();
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  void OnScored(const std::string& id, absl::StatusOr<ScoreResponse> result) {
    ScoreResponse response;
    if (result.ok()) {
      response = std::move(*result);
    } else {
      response.set_request_id(id);
      grpc::Status status = ToGrpcStatus(result.status());
      response.mutable_error()->set_code(status.error_code());
      response.mutable_error()->set_message(status.error_message());
    }
    const grpc::ByteBuffer* write = nullptr;
    bool resume_reading = false, finish;
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      if (!write_failed_) {
        writes_.push_back(Serialize(response));
        if (!writing_) {
          writing_ = true;
          write = &writes_.front();
        }
      }
      if (read_paused_ && !reads_done_ &&
          outstanding_ < ScoringServiceImpl::kMaxInFlightPerStream) {
        read_paused_ = false;
        resume_reading = true;
      }
      finish = ShouldFinishLocked();
    }
    if (write != nullptr) StartWrite(write);
    if (resume_reading) StartRead(&request_);
    if (finish) Finish(grpc::Status::OK);
  }

  // True exactly once: when nothing can be read, computed or written.
  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || outstanding_ > 0 || writing_) return false;
    finished_ = true;
    return true;
  }

  ScoringServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer request_;  // target of the one read in flight
  absl::Mutex mu_;
  // deque: elements stay put while their write is in flight.
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::Status ScoringServiceImpl::SubmitScore(
    grpc::CallbackServerContext* context, const ScoreRequest& request,
    RespondFn respond) {
  const absl::Time arrival = absl::Now();
  auto registry = AdmittingRegistry(*state_);
  if (!registry.ok()) return Unrouted(registry.status());
  auto servable = (*registry)->Find(request.model(), request.model_version());
  if (!servable.ok()) return Unrouted(servable.status());
  // Shared with the task until it completes: a version being unloaded
  // waits for it (model_registry.h).
  std::shared_ptr<serving::Servable> model = std::move(*servable);
  serving::ServingObserver& observer = model->observer();
  observer.OnRequestStarted();
  auto validated = ValidateScoreRequest(request, SignatureOf(*model));
  if (!validated.ok()) {
    observer.OnRequestFinished(validated.status().code(), absl::Now() - arrival,
                               absl::ZeroDuration(), absl::ZeroDuration());
    return validated.status();
  }

  const absl::Time deadline = TaskDeadline(*context, model->config(), arrival);
  const int priority = static_cast<int>(request.priority());
  serving::Servable& target = *model;
  auto done = [model = std::move(model), &observer, id = request.request_id(),
               tokens = std::move(validated->tokens),
               truncated = validated->truncated, arrival,
               respond = std::move(respond)](
                  absl::StatusOr<serving::ScoringResult> result) mutable {
    const absl::Duration total = absl::Now() - arrival;
    if (!result.ok()) {
      observer.OnRequestFinished(result.status().code(), total,
                                 absl::ZeroDuration(), absl::ZeroDuration());
      respond(result.status());
      return;
    }
    observer.OnRequestFinished(absl::StatusCode::kOk, total,
                               absl::Microseconds(result->timing.queue_us),
                               absl::Microseconds(result->timing.compute_us));
    ScoreResponse response;
    FillScoreResponse(id, *model, std::move(tokens), truncated,
                      std::move(*result), absl::ToInt64Microseconds(total),
                      response);
    respond(std::move(response));
  };
  auto task = std::make_unique<serving::ScoringTask>(
      std::move(validated->input), arrival, deadline,
      [context] { return context->IsCancelled(); }, std::move(done), priority);
  // A full queue or a draining server answers through `respond` too.
  if (absl::Status queued = target.Submit(task); !queued.ok()) {
    task->Complete(queued);
  }
  return absl::OkStatus();
}

absl::Status ScoringServiceImpl::Unrouted(absl::Status status) const {
  if (on_unrouted_) on_unrouted_(status.code());
  return status;
}

grpc::ServerUnaryReactor* ScoringServiceImpl::Score(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  calls_started_.fetch_add(1, std::memory_order_relaxed);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ScoreRequest request;
  if (absl::Status parsed = ParseScoreRequest(*request_bytes, request);
      !parsed.ok()) {
    reactor->Finish(ToGrpcStatus(Unrouted(parsed)));
    return reactor;
  }
  absl::Status submitted = SubmitScore(
      context, request,
      [reactor, response_bytes](absl::StatusOr<ScoreResponse> result) {
        if (result.ok()) *response_bytes = Serialize(*result);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
ScoringServiceImpl::ScoreStream(grpc::CallbackServerContext* context) {
  calls_started_.fetch_add(1, std::memory_order_relaxed);
  return new ScoreStreamReactor(this, context);
}

grpc::ServerUnaryReactor* ScoringServiceImpl::GetModelMetadata(
    grpc::CallbackServerContext* context,
    const fusion::v1::GetModelMetadataRequest* request,
    fusion::v1::ModelMetadata* response) {
  calls_started_.fetch_add(1, std::memory_order_relaxed);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto registry = AdmittingRegistry(*state_);
  if (!registry.ok()) {
    reactor->Finish(ToGrpcStatus(registry.status()));
    return reactor;
  }
  auto servable = (*registry)->Find(request->model(), request->model_version());
  if (!servable.ok()) {
    reactor->Finish(ToGrpcStatus(servable.status()));
    return reactor;
  }
  auto status = (*registry)->GetModelStatus(request->model());
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status.status()));
    return reactor;
  }
  *response = BuildModelMetadata(**servable, *status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace fusion::api
