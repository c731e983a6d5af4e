// ScoringService over a real in-process gRPC server: the service, a registry
// holding one model over FakeModelRuntime, a client on 127.0.0.1. Covers
// ScoreStream's flow control and unary calls through the CallGate across
// shutdown.
#include "server/api/scoring_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"
#include "server/serving/fake_repository.h"
#include "server/serving/model_registry.h"
#include "server/serving/serving_state.h"

namespace fusion::api {
namespace {

namespace fs = std::filesystem;
using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;
using runtime::FakeModelRuntime;

// Long enough never to be reached unless the server is broken.
constexpr absl::Duration kWait = absl::Seconds(10);

// The queue holds twice the stream's limit, and has no bound on its work
// (a held model makes a batch look endless), so that only the stream's own
// flow control can stop requests, never a full queue.
constexpr char kConfig[] = R"pb(
  name: "m"
  version: 1
  classes: "a"
  classes: "b"
  positive_class: 1
  max_tokens: 16
  attention_heads: 2
  features { name: "x" }
  features { name: "y" }
  batching { instance_count: 1 max_queue_size: 1024 max_queue_wait_us: 0 }
)pb";

// Counts the requests the service hands to the model (every routed request
// is started once, valid or not) and the most ever in flight at once.
class CountingObserver final : public serving::ServingObserver {
 public:
  void OnRequestStarted() override {
    absl::MutexLock lock(&mu_);
    ++started_;
    max_in_flight_ = std::max(max_in_flight_, started_ - finished_);
  }
  void OnRequestFinished(absl::StatusCode, absl::Duration, absl::Duration,
                         absl::Duration) override {
    absl::MutexLock lock(&mu_);
    ++finished_;
  }
  void OnBatchComputed(const serving::BatchStats&) override {}

  // False if fewer than `n` have started within `timeout`.
  bool AwaitStarted(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]()
                       ABSL_NO_THREAD_SAFETY_ANALYSIS { return started_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  int started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }
  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  absl::Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

class ScoringServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repo = serving::FakeRepository::Create(
        fs::path(::testing::TempDir()) /
            absl::StrCat("scoring_service_test_",
                         ::testing::UnitTest::GetInstance()
                             ->current_test_info()
                             ->name()),
        {kConfig, {}, &observer_});
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = std::move(*repo);
    fake_ = &repo_->fake();
    state_.SetReady(&repo_->registry());

    service_ =
        std::make_unique<ScoringServiceImpl>(&state_, &gate_, nullptr, limit_);
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    stub_ = fusion::v1::ScoringService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    // A held forward or a parked call would keep the server's calls, and
    // Shutdown, waiting.
    if (fake_ != nullptr) fake_->Release();
    gate_.Release();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::seconds(5));
    }
    state_.ClearRegistry();
    repo_.reset();  // drains the servable
  }

  // A request the model accepts: "hello" is 3 tokens, so the fake scores it
  // 0.003.
  static ScoreRequest Valid(const std::string& id) {
    ScoreRequest request;
    request.set_request_id(id);
    request.set_text("hello");
    (*request.mutable_features())["x"] = 1.0f;
    (*request.mutable_features())["y"] = 2.0f;
    return request;
  }

  // Bounds every blocking call on a stream: a broken server fails the test
  // with DEADLINE_EXCEEDED instead of hanging it.
  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
  }

  // Writes `requests` (more than the limit) on one stream while the model
  // holds every batch: the server must start exactly limit_ of them, then
  // answer each once when the model lets go, never with more in flight.
  void ExpectStopsReadingAtTheLimit(int requests);

  int limit_ = ScoringServiceImpl::kDefaultMaxInFlightPerStream;
  CountingObserver observer_;         // outlives the servable (repo_)
  FakeModelRuntime* fake_ = nullptr;  // owned by the servable
  serving::ServingState state_;
  std::unique_ptr<serving::FakeRepository> repo_;
  CallGate gate_;  // outlives the server
  std::unique_ptr<ScoringServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<fusion::v1::ScoringService::Stub> stub_;
};

void ScoringServiceTest::ExpectStopsReadingAtTheLimit(int requests) {
  fake_->Hold();  // nothing completes, so nothing frees a slot
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub_->ScoreStream(&context);
  absl::Notification all_written;
  std::thread writer([&] {
    for (int i = 0; i < requests; ++i) {
      if (!stream->Write(Valid(absl::StrCat("r", i)))) return;
    }
    all_written.Notify();
    stream->WritesDone();
  });
  // On an early return: unblock the model and the writer before joining.
  auto cleanup = absl::MakeCleanup([&] {
    fake_->Release();
    context.TryCancel();
    writer.join();
  });

  // ~30 KB of requests fit the stream's HTTP/2 window, so every one has
  // left the client even though the server stopped reading.
  ASSERT_TRUE(all_written.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(observer_.AwaitStarted(limit_, kWait)) << observer_.started();
  // The rest wait in the transport. A server that went on reading would
  // start them within microseconds; give it far longer than that.
  EXPECT_FALSE(observer_.AwaitStarted(limit_ + 1, absl::Milliseconds(500)))
      << observer_.started() << " requests reached the model";
  EXPECT_EQ(observer_.started(), limit_);

  fake_->Release();
  std::map<std::string, int> answered;
  ScoreResponse response;
  while (stream->Read(&response)) {
    EXPECT_FALSE(response.has_error())
        << response.request_id() << ": " << response.error().message();
    EXPECT_FLOAT_EQ(response.score(), 0.003f) << response.request_id();
    ++answered[response.request_id()];
  }
  std::move(cleanup).Cancel();
  writer.join();
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << ": "
                           << status.error_message();

  EXPECT_EQ(answered.size(), static_cast<size_t>(requests));
  for (int i = 0; i < requests; ++i) {
    const auto it = answered.find(absl::StrCat("r", i));
    ASSERT_NE(it, answered.end()) << "r" << i << " was never answered";
    EXPECT_EQ(it->second, 1) << "r" << i;
  }
  EXPECT_EQ(observer_.started(), requests);
  // Reading resumed as answers went out, never past the limit.
  EXPECT_EQ(observer_.max_in_flight(), limit_);
}

TEST_F(ScoringServiceTest, StopsReadingAtTheLimitAndAnswersEveryRequestOnce) {
  ExpectStopsReadingAtTheLimit(limit_ + 88);
}

// --max_in_flight_per_stream at its lowest: one request at a time.
class ScoringServiceLimitOfOneTest : public ScoringServiceTest {
 protected:
  ScoringServiceLimitOfOneTest() { limit_ = 1; }
};

TEST_F(ScoringServiceLimitOfOneTest, StopsReadingAfterOneRequest) {
  ExpectStopsReadingAtTheLimit(40);
}

TEST_F(ScoringServiceTest, FailedRequestsGetErrorsAndTheStreamGoesOn) {
  std::vector<ScoreRequest> requests;
  requests.push_back(Valid("good-0"));
  ScoreRequest unknown_feature = Valid("bad-feature");
  (*unknown_feature.mutable_features())["z"] = 3.0f;
  requests.push_back(unknown_feature);
  requests.push_back(Valid("good-1"));
  ScoreRequest no_text = Valid("bad-input");
  no_text.clear_text();
  requests.push_back(no_text);
  ScoreRequest unknown_model = Valid("bad-model");
  unknown_model.set_model("nope");
  requests.push_back(unknown_model);
  ScoreRequest past_vocab = Valid("bad-id");
  past_vocab.clear_text();
  past_vocab.add_token_ids(2);
  past_vocab.add_token_ids(5);  // the vocab has 5 entries: ids 0..4
  requests.push_back(past_vocab);
  requests.push_back(Valid("good-2"));

  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub_->ScoreStream(&context);
  for (const ScoreRequest& request : requests) {
    ASSERT_TRUE(stream->Write(request)) << request.request_id();
  }
  ASSERT_TRUE(stream->WritesDone());
  std::map<std::string, ScoreResponse> answered;
  std::map<std::string, int> count;
  ScoreResponse response;
  while (stream->Read(&response)) {
    ++count[response.request_id()];
    answered[response.request_id()] = response;
  }
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << ": "
                           << status.error_message();

  ASSERT_EQ(answered.size(), requests.size());
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id;
  for (const char* id : {"good-0", "good-1", "good-2"}) {
    const ScoreResponse& good = answered[id];
    EXPECT_FALSE(good.has_error()) << id << ": " << good.error().message();
    EXPECT_FLOAT_EQ(good.score(), 0.003f) << id;
    EXPECT_EQ(good.model(), "m") << id;
  }
  struct Expected {
    const char* id;
    grpc::StatusCode code;
    const char* message_prefix;
  };
  for (const Expected& want : {
           Expected{"bad-feature", grpc::StatusCode::INVALID_ARGUMENT,
                    "features['z']: unknown feature"},
           Expected{"bad-input", grpc::StatusCode::INVALID_ARGUMENT,
                    "text or token_ids: set exactly one (neither is set)"},
           Expected{"bad-model", grpc::StatusCode::NOT_FOUND,
                    "model 'nope' not found"},
           Expected{"bad-id", grpc::StatusCode::INVALID_ARGUMENT,
                    "token_ids[1]: id 5 is outside the vocabulary [0, 5)"},
       }) {
    const ScoreResponse& bad = answered[want.id];
    ASSERT_TRUE(bad.has_error()) << want.id;
    EXPECT_EQ(bad.error().code(), want.code) << want.id;
    EXPECT_TRUE(absl::StartsWith(bad.error().message(), want.message_prefix))
        << want.id << ": " << bad.error().message();
    EXPECT_EQ(bad.probabilities_size(), 0) << want.id;
  }
  // Only the requests routed to "m" reached its servable, valid or not.
  EXPECT_EQ(observer_.started(), 6);
}

// A unary Score on its own thread, so that a test can watch it wait.
class PendingScore {
 public:
  PendingScore(fusion::v1::ScoringService::Stub& stub, const ScoreRequest& r,
               absl::Duration timeout)
      : thread_([this, &stub, r, timeout] {
          context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
          status_ = stub.Score(&context_, r, &response_);
          done_.Notify();
        }) {}
  ~PendingScore() {
    context_.TryCancel();
    thread_.join();
  }

  bool AwaitDone(absl::Duration timeout) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  // Only after AwaitDone returned true.
  const grpc::Status& status() const { return status_; }
  const ScoreResponse& response() const { return response_; }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  grpc::Status status_;
  ScoreResponse response_;
  absl::Notification done_;
  std::thread thread_;
};

bool IsNotStarted(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         absl::StrContains(status.error_message(), "not started");
}

TEST_F(ScoringServiceTest, HeldCallIsParkedThenAnsweredNotStartedOnRelease) {
  gate_.Hold();
  PendingScore held(*stub_, Valid("held"), absl::Seconds(60));
  // A gate that let it through would answer within milliseconds.
  EXPECT_FALSE(held.AwaitDone(absl::Milliseconds(500)));
  EXPECT_EQ(observer_.started(), 0);
  EXPECT_EQ(gate_.admitted_in_flight(), 0);

  gate_.Release();
  ASSERT_TRUE(held.AwaitDone(kWait));
  EXPECT_TRUE(IsNotStarted(held.status()))
      << held.status().error_code() << ": " << held.status().error_message();
  EXPECT_EQ(observer_.started(), 0);
  EXPECT_EQ(gate_.refused(), 1);

  // Released: a new call is answered at once, still without starting.
  PendingScore late(*stub_, Valid("late"), absl::Seconds(60));
  ASSERT_TRUE(late.AwaitDone(kWait));
  EXPECT_TRUE(IsNotStarted(late.status())) << late.status().error_message();
  EXPECT_EQ(observer_.started(), 0);
}

TEST_F(ScoringServiceTest, AdmittedCallsFinishNormallyWhileNewOnesAreHeld) {
  fake_->Hold();
  PendingScore admitted(*stub_, Valid("admitted"), absl::Seconds(60));
  ASSERT_TRUE(observer_.AwaitStarted(1, kWait));
  EXPECT_EQ(gate_.admitted_in_flight(), 1);

  gate_.Hold();
  PendingScore held(*stub_, Valid("held"), absl::Seconds(60));
  fake_->Release();
  ASSERT_TRUE(admitted.AwaitDone(kWait));
  EXPECT_TRUE(admitted.status().ok()) << admitted.status().error_message();
  EXPECT_FLOAT_EQ(admitted.response().score(), 0.003f);
  // The reactor is done a moment after the client has its answer.
  for (absl::Time give_up = absl::Now() + kWait;
       gate_.admitted_in_flight() > 0 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(gate_.admitted_in_flight(), 0);
  EXPECT_FALSE(held.AwaitDone(absl::Milliseconds(200)));

  gate_.Release();
  ASSERT_TRUE(held.AwaitDone(kWait));
  EXPECT_TRUE(IsNotStarted(held.status())) << held.status().error_message();
  EXPECT_EQ(observer_.started(), 1);
}

TEST_F(ScoringServiceTest, ParkedCallNearItsDeadlineIsAnsweredBeforeIt) {
  gate_.Hold();
  const absl::Time sent = absl::Now();
  PendingScore held(*stub_, Valid("short"), absl::Milliseconds(400));
  // As the server's drain loop does: answer what is within 100 ms of its
  // deadline.
  while (!held.AwaitDone(absl::Milliseconds(5))) {
    gate_.ReleaseExpiring(absl::Milliseconds(100));
  }
  EXPECT_TRUE(IsNotStarted(held.status()))
      << held.status().error_code() << ": " << held.status().error_message();
  // Answered inside the margin, not at the 400 ms deadline.
  EXPECT_LT(absl::Now() - sent, absl::Milliseconds(390));
  EXPECT_EQ(gate_.refused(), 1);
}

TEST_F(ScoringServiceTest, ParkedCallTheClientCancelsIsFinishedAtOnce) {
  gate_.Hold();
  PendingScore held(*stub_, Valid("gone"), absl::Seconds(60));
  EXPECT_FALSE(held.AwaitDone(absl::Milliseconds(200)));
  held.Cancel();
  ASSERT_TRUE(held.AwaitDone(kWait));
  EXPECT_EQ(held.status().error_code(), grpc::StatusCode::CANCELLED);
  // The server finished the parked call on the cancel (not counted as a
  // refusal): shutting down does not wait for it.
  EXPECT_EQ(gate_.refused(), 0);
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(ScoringServiceTest, ClosedStreamAnswersWhatItReadThenEndsUnavailable) {
  fake_->Hold();
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub_->ScoreStream(&context);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(Valid(absl::StrCat("r", i))));
  }
  ASSERT_TRUE(observer_.AwaitStarted(3, kWait));
  EXPECT_EQ(gate_.streams()->count(), 1);

  // The client never half-closes; the server ends the stream.
  gate_.streams()->CloseAll();
  fake_->Release();
  std::vector<std::string> answered;
  ScoreResponse response;
  while (stream->Read(&response)) {
    EXPECT_FALSE(response.has_error()) << response.error().message();
    answered.push_back(response.request_id());
  }
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(answered, (std::vector<std::string>{"r0", "r1", "r2"}));
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(IsNotStarted(status))
      << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(observer_.started(), 3);
  for (absl::Time give_up = absl::Now() + kWait;
       gate_.streams()->count() > 0 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(gate_.streams()->count(), 0);
}

TEST_F(ScoringServiceTest, IdleStreamEndsAtOnceAndLaterStreamsAreRefused) {
  grpc::ClientContext idle_context;
  SetDeadline(idle_context);
  auto idle = stub_->ScoreStream(&idle_context);
  ASSERT_TRUE(idle->Write(Valid("before")));
  ScoreResponse response;
  ASSERT_TRUE(idle->Read(&response));
  EXPECT_FLOAT_EQ(response.score(), 0.003f);

  gate_.streams()->CloseAll();
  EXPECT_FALSE(idle->Read(&response));
  const grpc::Status idle_status = idle->Finish();
  EXPECT_TRUE(IsNotStarted(idle_status)) << idle_status.error_message();

  grpc::ClientContext late_context;
  SetDeadline(late_context);
  auto late = stub_->ScoreStream(&late_context);
  late->Write(Valid("after"));  // may fail: the stream is already over
  EXPECT_FALSE(late->Read(&response));
  const grpc::Status late_status = late->Finish();
  EXPECT_TRUE(IsNotStarted(late_status)) << late_status.error_message();
  EXPECT_EQ(observer_.started(), 1);
}

}  // namespace
}  // namespace fusion::api
