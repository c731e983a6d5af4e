// How fusion-bench puts requests on the wire: unary calls or ScoreStream
// streams, both with gRPC's callback API, so a few threads carry any number
// of outstanding requests.
//
// A sender reports each accepted request's Outcome exactly once to its
// handler, on a gRPC thread; the handler may call Send again (closed loop).
#ifndef FUSION_CLIENT_BENCH_SENDERS_H_
#define FUSION_CLIENT_BENCH_SENDERS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "client/bench/recorder.h"
#include "client/fusion_client.h"

namespace fusion::bench {

// `slot` is the value given to Send, handed back untouched.
using OutcomeHandler = std::function<void(int slot, const Outcome& outcome)>;

class Sender {
 public:
  virtual ~Sender() = default;
  // Starts one request; never blocks on the network. `request` must stay
  // valid until its outcome is handled. Returns false when it cannot be sent
  // (its stream is gone); no outcome follows then. Thread-safe.
  virtual bool Send(const fusion::v1::ScoreRequest& request,
                    int64_t intended_ns, int slot) = 0;
  // Call once every accepted request's outcome has been handled (or the
  // deadline has passed): closes streams and waits until no gRPC callback
  // can touch the sender any more.
  virtual void Close() = 0;
};

// Unary Score calls spread over `clients` in turn; each call gets the
// client's timeout as its deadline.
std::unique_ptr<Sender> MakeUnarySender(
    std::vector<const fusion::Client*> clients, OutcomeHandler handler);

// `streams` ScoreStream calls spread over `clients`; request `slot` goes on
// stream slot % streams. Each stream ends by `deadline` at the latest; a
// stream that breaks fails its outstanding requests with its status.
std::unique_ptr<Sender> MakeStreamSender(
    std::vector<const fusion::Client*> clients, int streams,
    absl::Time deadline, OutcomeHandler handler);

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_SENDERS_H_
