// Admission of new unary RPCs across shutdown.
//
// Why: gRPC (1.51) cancels every call that reaches the server after its
// Shutdown has begun but before the client has read the GOAWAY: the client
// sees CANCELLED, which no retry policy retries. A client that keeps N calls
// in flight sends a new one the moment one is answered, so some are always
// on the wire when Shutdown starts. The gate makes that wire empty first:
//
//   open      → calls run.
//   holding   → a new call is parked, unanswered: once every call a client
//               has in flight is parked (or answered), it has nothing left
//               to send. Admitted calls finish normally.
//   released  → (the caller has started gRPC's Shutdown, whose GOAWAY sends
//               new calls elsewhere) parked and new calls are answered
//               UNAVAILABLE, "not started": safe for any client to retry.
//
// A parked call whose deadline comes near is answered UNAVAILABLE early
// (ReleaseExpiring), so holding never turns into DEADLINE_EXCEEDED.
// Streams are not held (messages on an open stream start no new call); the
// gate keeps the set of open ones, for shutdown to end those whose clients
// never half-close.
// Thread-safety: every method may be called from any thread. The gate must
// outlive the gRPC server whose calls it admits.
#ifndef FUSION_SERVER_API_CALL_GATE_H_
#define FUSION_SERVER_API_CALL_GATE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/api/stream_reactor.h"

namespace fusion::api {

class CallGate {
 public:
  // Runs `body` with the call's reactor iff the gate admits the call; `body`
  // must Finish the reactor exactly once (now or later, from any thread).
  // Otherwise the call is parked or refused. Returns the reactor to give
  // gRPC.
  grpc::ServerUnaryReactor* Begin(
      grpc::CallbackServerContext* context,
      absl::FunctionRef<void(grpc::ServerUnaryReactor*)> body);

  void Hold();
  // Answers parked calls whose deadline is within `margin` UNAVAILABLE.
  void ReleaseExpiring(absl::Duration margin);
  // Answers every parked call, and every later one, UNAVAILABLE.
  void Release();

  // Admitted calls whose reactor is not yet done.
  int64_t admitted_in_flight() const;
  // When the last call began (InfinitePast() before the first).
  absl::Time last_arrival() const;
  // Calls answered UNAVAILABLE by the gate so far.
  int64_t refused() const;

  OpenStreams* streams() { return &streams_; }

 private:
  class Reactor;
  enum class Phase { kOpen, kHolding, kReleased };

  void OnAdmittedDone();
  // Unparks `reactor` if it is parked; whoever unparks it finishes it.
  bool Unpark(Reactor* reactor);

  mutable absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kOpen;
  // Parked calls and their deadlines.
  absl::flat_hash_map<Reactor*, absl::Time> parked_ ABSL_GUARDED_BY(mu_);
  int64_t admitted_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_arrival_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  OpenStreams streams_;
};

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_CALL_GATE_H_
