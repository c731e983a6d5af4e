#include "client/bench/senders.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/v2_request.h"
#include "grpcpp/support/client_callback.h"
#include "inference/grpc_service.grpc.pb.h"

namespace fusion::bench {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

// What differs between the protocols; the senders are templates over it.
struct NativeProtocol {
  using Request = ScoreRequest;
  using Response = ScoreResponse;        // unary
  using StreamResponse = ScoreResponse;  // one message of the stream
  using Stub = fusion::v1::ScoringService::Stub;

  static const Request& Of(const WorkItem& item) { return *item.native; }
  static Stub* StubFor(const fusion::Client& client,
                       std::vector<std::unique_ptr<Stub>>* /*owned*/) {
    return &client.stub();
  }
  static void Call(Stub* stub, grpc::ClientContext* context,
                   const Request* request, Response* response,
                   std::function<void(grpc::Status)> done) {
    stub->async()->Score(context, request, response, std::move(done));
  }
  static void Stream(
      Stub* stub, grpc::ClientContext* context,
      grpc::ClientBidiReactor<Request, StreamResponse>* reactor) {
    stub->async()->ScoreStream(context, reactor);
  }
  static void SetTag(Request* request, uint64_t seq) {
    request->set_request_id(absl::StrCat(seq));
  }
  static const std::string& Tag(const StreamResponse& response) {
    return response.request_id();
  }
  static bool IsError(const StreamResponse& response) {
    return response.has_error() && response.error().code() != 0;
  }
  static void Fill(const Response& response, Outcome* o) {
    if (IsError(response)) {
      o->code = static_cast<absl::StatusCode>(response.error().code());
      return;
    }
    o->batch_size = response.timing().batch_size();
    o->queue_us = response.timing().queue_us();
    o->compute_us = response.timing().compute_us();
    o->server_total_us = response.timing().total_us();
  }
  static void FillStream(const StreamResponse& response, Outcome* o) {
    Fill(response, o);
  }
};

// The Open Inference Protocol: no server timing in its responses.
struct V2Protocol {
  using Request = inference::ModelInferRequest;
  using Response = inference::ModelInferResponse;
  using StreamResponse = inference::ModelStreamInferResponse;
  using Stub = inference::GRPCInferenceService::Stub;

  static const Request& Of(const WorkItem& item) { return *item.v2; }
  static Stub* StubFor(const fusion::Client& client,
                       std::vector<std::unique_ptr<Stub>>* owned) {
    owned->push_back(
        inference::GRPCInferenceService::NewStub(client.channel()));
    return owned->back().get();
  }
  static void Call(Stub* stub, grpc::ClientContext* context,
                   const Request* request, Response* response,
                   std::function<void(grpc::Status)> done) {
    stub->async()->ModelInfer(context, request, response, std::move(done));
  }
  static void Stream(
      Stub* stub, grpc::ClientContext* context,
      grpc::ClientBidiReactor<Request, StreamResponse>* reactor) {
    stub->async()->ModelStreamInfer(context, reactor);
  }
  static void SetTag(Request* request, uint64_t seq) {
    request->set_id(absl::StrCat(seq));
  }
  static const std::string& Tag(const StreamResponse& response) {
    return response.infer_response().id();
  }
  static bool IsError(const StreamResponse& response) {
    return !response.error_message().empty();
  }
  static void Fill(const Response& /*response*/, Outcome* /*o*/) {}
  static void FillStream(const StreamResponse& response, Outcome* o) {
    if (IsError(response)) {
      o->code = client::V2StreamErrorCode(response.error_message());
    }
  }
};

// --- unary -------------------------------------------------------------------

template <typename P>
class UnarySender final : public Sender {
 public:
  UnarySender(std::vector<const fusion::Client*> clients,
              OutcomeHandler handler)
      : clients_(std::move(clients)), handler_(std::move(handler)) {
    for (const fusion::Client* c : clients_) {
      stubs_.push_back(P::StubFor(*c, &owned_stubs_));
    }
  }

  bool Send(const WorkItem& item, int64_t intended_ns, int slot) override {
    const size_t i =
        next_client_.fetch_add(1, std::memory_order_relaxed) % clients_.size();
    const fusion::Client* client = clients_[i];
    auto* call = new Call;
    call->slot = slot;
    call->outcome.intended_ns = intended_ns;
    client->ConfigureContext(&call->context, client->DeadlineFromNow());
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    call->outcome.sent_ns = NowNs();
    P::Call(stubs_[i], &call->context, &P::Of(item), &call->response,
            [this, call](grpc::Status status) {
              call->outcome.end_ns = NowNs();
              call->outcome.code =
                  static_cast<absl::StatusCode>(status.error_code());
              if (status.ok()) P::Fill(call->response, &call->outcome);
              handler_(call->slot, call->outcome);
              delete call;
              if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lock(mu_);
                idle_.notify_all();
              }
            });
    return true;
  }

  void Close() override {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock,
               [&] { return in_flight_.load(std::memory_order_acquire) == 0; });
  }

 private:
  struct Call {
    grpc::ClientContext context;
    typename P::Response response;
    Outcome outcome;
    int slot = 0;
  };

  const std::vector<const fusion::Client*> clients_;
  std::vector<std::unique_ptr<typename P::Stub>> owned_stubs_;
  std::vector<typename P::Stub*> stubs_;  // one per client
  const OutcomeHandler handler_;
  std::atomic<uint64_t> next_client_{0};
  std::atomic<int64_t> in_flight_{0};
  std::mutex mu_;
  std::condition_variable idle_;
};

// --- streams -----------------------------------------------------------------

// One stream (ScoreStream or ModelStreamInfer). Writes are queued (one in
// flight at a time, as the API requires); responses are matched to their
// request by a per-stream sequence number carried in request_id (native) or
// id (v2). A response without a tag (a server that does not echo it) is
// taken as the answer to the oldest outstanding request, so counts stay
// right.
template <typename P>
class StreamCall final
    : public grpc::ClientBidiReactor<typename P::Request,
                                     typename P::StreamResponse> {
 public:
  using Request = typename P::Request;

  StreamCall(const fusion::Client& client, typename P::Stub* stub,
             absl::Time deadline, const OutcomeHandler& handler)
      : handler_(handler) {
    client.ConfigureContext(&context_, deadline);
    P::Stream(stub, &context_, this);
    this->StartRead(&response_);
    this->AddHold();  // Send and Close start operations from other threads
    this->StartCall();
  }

  bool Send(const Request& request, int64_t intended_ns, int slot) {
    auto message = std::make_unique<Request>(request);
    const Request* start = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (over_ || closing_ || write_failed_) return false;
      const uint64_t seq = next_seq_++;
      P::SetTag(message.get(), seq);
      pending_[seq] = Pending{intended_ns, NowNs(), slot};
      queue_.push_back(std::move(message));
      if (!writing_) {
        writing_ = true;
        start = queue_.front().get();
      }
    }
    if (start != nullptr) this->StartWrite(start);
    return true;
  }

  void Close() {
    bool writes_done = false, remove_hold = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      if (!writing_ && !hold_removed_) {
        hold_removed_ = remove_hold = true;
        writes_done = !write_failed_ && !over_;
      }
    }
    if (writes_done) this->StartWritesDone();
    if (remove_hold) this->RemoveHold();
  }

  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    finished_.wait(lock, [&] { return done_; });
  }

  void OnWriteDone(bool ok) override {
    const Request* next = nullptr;
    bool writes_done = false, remove_hold = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      if (!ok) {
        write_failed_ = true;  // the stream is broken; OnDone fails the rest
        queue_.clear();
      }
      if (!queue_.empty()) {
        next = queue_.front().get();
      } else {
        writing_ = false;
        if ((closing_ || over_) && !hold_removed_) {
          hold_removed_ = remove_hold = true;
          writes_done = closing_ && !write_failed_ && !over_;
        }
      }
    }
    if (next != nullptr) this->StartWrite(next);
    if (writes_done) this->StartWritesDone();
    if (remove_hold) this->RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream is over. Stop sending and let OnDone come (with the
      // status) without waiting for Close.
      bool remove_hold = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        over_ = true;
        // With a write in flight, OnWriteDone removes the hold instead.
        if (!writing_ && !hold_removed_) hold_removed_ = remove_hold = true;
      }
      if (remove_hold) this->RemoveHold();
      return;
    }
    Outcome outcome;
    outcome.end_ns = NowNs();
    int slot = 0;
    bool matched = false;
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.end();
      if (absl::SimpleAtoi(P::Tag(response_), &seq)) {
        it = pending_.find(seq);
      } else {
        // No tag to go by: the oldest outstanding request.
        for (auto p = pending_.begin(); p != pending_.end(); ++p) {
          if (it == pending_.end() || p->first < it->first) it = p;
        }
      }
      if (it != pending_.end()) {
        outcome.intended_ns = it->second.intended_ns;
        outcome.sent_ns = it->second.sent_ns;
        slot = it->second.slot;
        pending_.erase(it);
        matched = true;
      }
    }
    if (matched) {
      P::FillStream(response_, &outcome);
      handler_(slot, outcome);
    }
    response_.Clear();
    this->StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    absl::flat_hash_map<uint64_t, Pending> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      over_ = true;
      left.swap(pending_);
    }
    const absl::StatusCode code =
        status.ok() ? absl::StatusCode::kUnavailable
                    : static_cast<absl::StatusCode>(status.error_code());
    const int64_t now = NowNs();
    for (const auto& [seq, p] : left) {
      Outcome outcome;
      outcome.intended_ns = p.intended_ns;
      outcome.sent_ns = p.sent_ns;
      outcome.end_ns = now;
      outcome.code = code;
      handler_(p.slot, outcome);
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    finished_.notify_all();
  }

 private:
  struct Pending {
    int64_t intended_ns, sent_ns;
    int slot;
  };

  const OutcomeHandler& handler_;
  grpc::ClientContext context_;
  typename P::StreamResponse response_;  // owned by the read in flight
  std::mutex mu_;
  std::condition_variable finished_;
  absl::flat_hash_map<uint64_t, Pending> pending_;  // guarded by mu_
  std::deque<std::unique_ptr<Request>> queue_;      // guarded by mu_
  uint64_t next_seq_ = 0;                           // guarded by mu_
  bool writing_ = false, closing_ = false, write_failed_ = false,
       hold_removed_ = false, over_ = false,
       done_ = false;  // guarded by mu_
};

template <typename P>
class StreamSender final : public Sender {
 public:
  StreamSender(const std::vector<const fusion::Client*>& clients, int streams,
               absl::Time deadline, OutcomeHandler handler)
      : handler_(std::move(handler)) {
    std::vector<typename P::Stub*> stubs;
    for (const fusion::Client* c : clients) {
      stubs.push_back(P::StubFor(*c, &owned_stubs_));
    }
    for (int i = 0; i < streams; ++i) {
      const size_t c = static_cast<size_t>(i) % clients.size();
      streams_.push_back(std::make_unique<StreamCall<P>>(*clients[c], stubs[c],
                                                         deadline, handler_));
    }
  }

  bool Send(const WorkItem& item, int64_t intended_ns, int slot) override {
    return streams_[static_cast<size_t>(slot) % streams_.size()]->Send(
        P::Of(item), intended_ns, slot);
  }

  void Close() override {
    for (auto& s : streams_) s->Close();
    for (auto& s : streams_) s->WaitDone();
  }

 private:
  const OutcomeHandler handler_;
  std::vector<std::unique_ptr<typename P::Stub>> owned_stubs_;
  std::vector<std::unique_ptr<StreamCall<P>>> streams_;
};

}  // namespace

std::unique_ptr<Sender> MakeUnarySender(
    std::vector<const fusion::Client*> clients, OutcomeHandler handler) {
  return std::make_unique<UnarySender<NativeProtocol>>(std::move(clients),
                                                       std::move(handler));
}

std::unique_ptr<Sender> MakeStreamSender(
    std::vector<const fusion::Client*> clients, int streams,
    absl::Time deadline, OutcomeHandler handler) {
  return std::make_unique<StreamSender<NativeProtocol>>(
      clients, std::max(streams, 1), deadline, std::move(handler));
}

std::unique_ptr<Sender> MakeV2UnarySender(
    std::vector<const fusion::Client*> clients, OutcomeHandler handler) {
  return std::make_unique<UnarySender<V2Protocol>>(std::move(clients),
                                                   std::move(handler));
}

std::unique_ptr<Sender> MakeV2StreamSender(
    std::vector<const fusion::Client*> clients, int streams,
    absl::Time deadline, OutcomeHandler handler) {
  return std::make_unique<StreamSender<V2Protocol>>(
      clients, std::max(streams, 1), deadline, std::move(handler));
}

}  // namespace fusion::bench
