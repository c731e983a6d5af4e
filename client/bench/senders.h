// How fusion-bench puts requests on the wire: unary calls or streams, in the
// native protocol (Score / ScoreStream) or the Open Inference Protocol
// (ModelInfer / ModelStreamInfer), all with gRPC's callback API, so a few
// threads carry any number of outstanding requests.
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
#include "client/bench/workload.h"
#include "client/fusion_client.h"

namespace fusion::bench {

// `slot` is the value given to Send, handed back untouched.
using OutcomeHandler = std::function<void(int slot, const Outcome& outcome)>;

class Sender {
 public:
  virtual ~Sender() = default;
  // Starts one request (item.native, or item.v2 for a v2 sender); never
  // blocks on the network. The request must stay valid until its outcome is
  // handled. Returns false when it cannot be sent (its stream is gone); no
  // outcome follows then. Thread-safe.
  virtual bool Send(const WorkItem& item, int64_t intended_ns, int slot) = 0;
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

// The same over the Open Inference Protocol (inference.GRPCInferenceService
// on the clients' channels): ModelInfer calls, or ModelStreamInfer streams
// (requests matched to responses by `id`; a response with error_message
// fails its request, with the code named at the start of the message, else
// UNKNOWN). v2 responses carry no server timing: outcomes leave it zero.
std::unique_ptr<Sender> MakeV2UnarySender(
    std::vector<const fusion::Client*> clients, OutcomeHandler handler);
std::unique_ptr<Sender> MakeV2StreamSender(
    std::vector<const fusion::Client*> clients, int streams,
    absl::Time deadline, OutcomeHandler handler);

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_SENDERS_H_
