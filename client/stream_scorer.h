// Bulk scoring over one ScoreStream, results handed back in input order.
//
// The server answers a stream in completion order; ScoreStreamOrdered sends
// each request with its input position as request_id, matches responses by
// it, restores the caller's request_id, and releases results through a
// reorder buffer. At most StreamOptions::max_in_flight inputs are between
// "read from the source" and "handed to the sink", which bounds memory.
#ifndef FUSION_CLIENT_STREAM_SCORER_H_
#define FUSION_CLIENT_STREAM_SCORER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/fusion_client.h"
#include "fusion/v1/scoring.pb.h"

namespace fusion::client {

// One input as the source hands it over.
struct StreamItem {
  // Not OK: the input could not be turned into a request (say, a bad JSON
  // line). It is never sent; its result carries this status, in order.
  absl::Status status;
  fusion::v1::ScoreRequest request;
};

// One output, handed to the sink in input order.
struct StreamResult {
  int64_t index = 0;                   // 0-based position in the input
  std::string request_id;              // the caller's request_id, as given
  absl::Status status;                 // this request's outcome
  fusion::v1::ScoreResponse response;  // set when status is OK
};

struct StreamOptions {
  int max_in_flight = 512;
  // Deadline of the whole stream; InfiniteDuration: none.
  absl::Duration timeout = absl::InfiniteDuration();
};

// Fills *item and returns true, or returns false when the input is over.
// Called on the calling thread only.
using StreamSource = std::function<bool(StreamItem* item)>;
// Receives every result, in input order, one call at a time (from the
// calling thread or the stream's reader thread, never both at once).
using StreamSink = std::function<void(StreamResult&& result)>;

// Scores everything `source` yields on one ScoreStream of `client`.
// Returns OK when the stream ran to its end: every input then got exactly one
// result (per-request failures are in the results). Otherwise returns the
// status that broke the stream (server down, deadline, cancelled): every
// request sent by then has had a result with that status, and the source is
// not read any further. INVALID_ARGUMENT for bad options.
absl::Status ScoreStreamOrdered(const Client& client,
                                const StreamSource& source,
                                const StreamSink& sink,
                                const StreamOptions& options = {});

}  // namespace fusion::client

#endif  // FUSION_CLIENT_STREAM_SCORER_H_
