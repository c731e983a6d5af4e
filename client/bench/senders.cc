#include "client/bench/senders.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/support/client_callback.h"

namespace fusion::bench {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

void FillFromResponse(const ScoreResponse& response, Outcome* o) {
  if (response.has_error() && response.error().code() != 0) {
    o->code = static_cast<absl::StatusCode>(response.error().code());
    return;
  }
  o->batch_size = response.timing().batch_size();
  o->queue_us = response.timing().queue_us();
  o->compute_us = response.timing().compute_us();
  o->server_total_us = response.timing().total_us();
}

// --- unary -------------------------------------------------------------------

class UnarySender final : public Sender {
 public:
  UnarySender(std::vector<const fusion::Client*> clients,
              OutcomeHandler handler)
      : clients_(std::move(clients)), handler_(std::move(handler)) {}

  bool Send(const ScoreRequest& request, int64_t intended_ns,
            int slot) override {
    const fusion::Client* client =
        clients_[next_client_.fetch_add(1, std::memory_order_relaxed) %
                 clients_.size()];
    auto* call = new Call;
    call->slot = slot;
    call->outcome.intended_ns = intended_ns;
    client->ConfigureContext(&call->context, client->DeadlineFromNow());
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    call->outcome.sent_ns = NowNs();
    client->stub().async()->Score(
        &call->context, &request, &call->response,
        [this, call](grpc::Status status) {
          call->outcome.end_ns = NowNs();
          call->outcome.code =
              static_cast<absl::StatusCode>(status.error_code());
          if (status.ok()) FillFromResponse(call->response, &call->outcome);
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
    ScoreResponse response;
    Outcome outcome;
    int slot = 0;
  };

  const std::vector<const fusion::Client*> clients_;
  const OutcomeHandler handler_;
  std::atomic<uint64_t> next_client_{0};
  std::atomic<int64_t> in_flight_{0};
  std::mutex mu_;
  std::condition_variable idle_;
};

// --- streams -----------------------------------------------------------------

// One ScoreStream. Writes are queued (one in flight at a time, as the API
// requires); responses are matched to their request by a per-stream sequence
// number carried in request_id.
class StreamCall final
    : public grpc::ClientBidiReactor<ScoreRequest, ScoreResponse> {
 public:
  StreamCall(const fusion::Client& client, absl::Time deadline,
             const OutcomeHandler& handler)
      : handler_(handler) {
    client.ConfigureContext(&context_, deadline);
    client.stub().async()->ScoreStream(&context_, this);
    StartRead(&response_);
    AddHold();  // Send and Close start operations from other threads
    StartCall();
  }

  bool Send(const ScoreRequest& request, int64_t intended_ns, int slot) {
    auto message = std::make_unique<ScoreRequest>(request);
    const ScoreRequest* start = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (over_ || closing_ || write_failed_) return false;
      const uint64_t seq = next_seq_++;
      message->set_request_id(absl::StrCat(seq));
      pending_[seq] = Pending{intended_ns, NowNs(), slot};
      queue_.push_back(std::move(message));
      if (!writing_) {
        writing_ = true;
        start = queue_.front().get();
      }
    }
    if (start != nullptr) StartWrite(start);
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
    if (writes_done) StartWritesDone();
    if (remove_hold) RemoveHold();
  }

  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    finished_.wait(lock, [&] { return done_; });
  }

  void OnWriteDone(bool ok) override {
    const ScoreRequest* next = nullptr;
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
    if (next != nullptr) StartWrite(next);
    if (writes_done) StartWritesDone();
    if (remove_hold) RemoveHold();
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
      if (remove_hold) RemoveHold();
      return;
    }
    Outcome outcome;
    outcome.end_ns = NowNs();
    int slot = 0;
    bool matched = false;
    uint64_t seq;
    if (absl::SimpleAtoi(response_.request_id(), &seq)) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.find(seq);
      if (it != pending_.end()) {
        outcome.intended_ns = it->second.intended_ns;
        outcome.sent_ns = it->second.sent_ns;
        slot = it->second.slot;
        pending_.erase(it);
        matched = true;
      }
    }
    if (matched) {
      FillFromResponse(response_, &outcome);
      handler_(slot, outcome);
    }
    response_.Clear();
    StartRead(&response_);
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
  ScoreResponse response_;  // owned by the read in flight
  std::mutex mu_;
  std::condition_variable finished_;
  absl::flat_hash_map<uint64_t, Pending> pending_;   // guarded by mu_
  std::deque<std::unique_ptr<ScoreRequest>> queue_;  // guarded by mu_
  uint64_t next_seq_ = 0;                            // guarded by mu_
  bool writing_ = false, closing_ = false, write_failed_ = false,
       hold_removed_ = false, over_ = false,
       done_ = false;  // guarded by mu_
};

class StreamSender final : public Sender {
 public:
  StreamSender(const std::vector<const fusion::Client*>& clients, int streams,
               absl::Time deadline, OutcomeHandler handler)
      : handler_(std::move(handler)) {
    for (int i = 0; i < streams; ++i) {
      streams_.push_back(std::make_unique<StreamCall>(
          *clients[i % clients.size()], deadline, handler_));
    }
  }

  bool Send(const ScoreRequest& request, int64_t intended_ns,
            int slot) override {
    return streams_[static_cast<size_t>(slot) % streams_.size()]->Send(
        request, intended_ns, slot);
  }

  void Close() override {
    for (auto& s : streams_) s->Close();
    for (auto& s : streams_) s->WaitDone();
  }

 private:
  const OutcomeHandler handler_;
  std::vector<std::unique_ptr<StreamCall>> streams_;
};

}  // namespace

std::unique_ptr<Sender> MakeUnarySender(
    std::vector<const fusion::Client*> clients, OutcomeHandler handler) {
  return std::make_unique<UnarySender>(std::move(clients), std::move(handler));
}

std::unique_ptr<Sender> MakeStreamSender(
    std::vector<const fusion::Client*> clients, int streams,
    absl::Time deadline, OutcomeHandler handler) {
  return std::make_unique<StreamSender>(clients, std::max(streams, 1), deadline,
                                        std::move(handler));
}

}  // namespace fusion::bench
