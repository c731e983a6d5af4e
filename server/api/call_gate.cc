#include "server/api/call_gate.h"

#include <vector>

#include "server/api/rpc_deadline.h"

namespace fusion::api {
namespace {

const grpc::Status& NotStarted() {
  static const grpc::Status* status = new grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      "server is shutting down; the request was not started (safe to retry)");
  return *status;
}

}  // namespace

// A unary reactor that tells the gate when its call is done, and answers a
// parked call its client gave up on.
class CallGate::Reactor final : public grpc::ServerUnaryReactor {
 public:
  Reactor(CallGate* gate, bool admitted) : gate_(gate), admitted_(admitted) {}

  void OnCancel() override {
    if (!admitted_ && gate_->Unpark(this)) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    }
  }

  void OnDone() override {
    if (admitted_) gate_->OnAdmittedDone();
    delete this;
  }

 private:
  CallGate* const gate_;
  const bool admitted_;
};

grpc::ServerUnaryReactor* CallGate::Begin(
    grpc::CallbackServerContext* context,
    absl::FunctionRef<void(grpc::ServerUnaryReactor*)> body) {
  const absl::Time now = absl::Now();
  Phase phase;
  {
    absl::MutexLock lock(&mu_);
    last_arrival_ = now;
    phase = phase_;
    if (phase == Phase::kOpen) ++admitted_in_flight_;
    if (phase == Phase::kReleased) ++refused_;
  }
  auto* reactor = new Reactor(this, phase == Phase::kOpen);
  switch (phase) {
    case Phase::kOpen:
      body(reactor);
      break;
    case Phase::kHolding: {
      bool parked = false;
      {
        absl::MutexLock lock(&mu_);
        // Released between the two locks: answer now.
        if (phase_ == Phase::kHolding) {
          parked_.emplace(reactor, DeadlineOf(*context));
          parked = true;
        } else {
          ++refused_;
        }
      }
      if (!parked) reactor->Finish(NotStarted());
      break;
    }
    case Phase::kReleased:
      reactor->Finish(NotStarted());
      break;
  }
  return reactor;
}

void CallGate::Hold() {
  absl::MutexLock lock(&mu_);
  if (phase_ == Phase::kOpen) phase_ = Phase::kHolding;
}

void CallGate::ReleaseExpiring(absl::Duration margin) {
  const absl::Time horizon = absl::Now() + margin;
  std::vector<Reactor*> due;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [reactor, deadline] : parked_) {
      if (deadline <= horizon) due.push_back(reactor);
    }
    for (Reactor* reactor : due) parked_.erase(reactor);
    refused_ += static_cast<int64_t>(due.size());
  }
  for (Reactor* reactor : due) reactor->Finish(NotStarted());
}

void CallGate::Release() {
  absl::flat_hash_map<Reactor*, absl::Time> parked;
  {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kReleased;
    parked.swap(parked_);
    refused_ += static_cast<int64_t>(parked.size());
  }
  for (const auto& [reactor, deadline] : parked) reactor->Finish(NotStarted());
}

int64_t CallGate::admitted_in_flight() const {
  absl::MutexLock lock(&mu_);
  return admitted_in_flight_;
}

absl::Time CallGate::last_arrival() const {
  absl::MutexLock lock(&mu_);
  return last_arrival_;
}

int64_t CallGate::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

void CallGate::OnAdmittedDone() {
  absl::MutexLock lock(&mu_);
  --admitted_in_flight_;
}

bool CallGate::Unpark(Reactor* reactor) {
  absl::MutexLock lock(&mu_);
  return parked_.erase(reactor) > 0;
}

}  // namespace fusion::api
