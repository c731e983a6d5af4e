#include "client/stream_scorer.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/ordered_results.h"

namespace fusion::client {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

// Shared by the writer (calling) thread and the reader thread.
class StreamBook {
 public:
  StreamBook(const StreamSink& sink, int max_in_flight)
      : sink_(sink), max_in_flight_(max_in_flight) {}

  // Blocks until `index` fits in the window or the stream is over; returns
  // false in the latter case.
  bool WaitForRoom(int64_t index) {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] {
      return reader_done_ || index - order_.next_index() < max_in_flight_;
    });
    return !reader_done_;
  }

  void Sent(int64_t index, std::string caller_id) {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.emplace(index, std::move(caller_id));
  }

  // A result for `index` (a response, a bad input, or a stream failure).
  // Unknown indices (already answered) are ignored.
  void Complete(int64_t index, std::string caller_id, absl::Status status,
                ScoreResponse response) {
    std::lock_guard<std::mutex> lock(mu_);
    StreamResult result;
    result.index = index;
    result.request_id = std::move(caller_id);
    result.status = std::move(status);
    result.response = std::move(response);
    if (order_.Put(index, std::move(result))) ReleaseLocked();
  }

  // A response from the server, matched by its request_id.
  void Answered(ScoreResponse response) {
    int64_t index;
    std::string caller_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!absl::SimpleAtoi(response.request_id(), &index)) return;
      auto it = in_flight_.find(index);
      if (it == in_flight_.end()) return;
      caller_id = std::move(it->second);
      in_flight_.erase(it);
    }
    absl::Status status;
    if (response.has_error() && response.error().code() != 0) {
      status =
          absl::Status(static_cast<absl::StatusCode>(response.error().code()),
                       response.error().message());
    }
    response.set_request_id(caller_id);
    Complete(index, std::move(caller_id), std::move(status),
             std::move(response));
  }

  void ReaderDone() {
    std::lock_guard<std::mutex> lock(mu_);
    reader_done_ = true;
    room_.notify_all();
  }

  // Fails everything still waiting for the server with `status`.
  void FailInFlight(const absl::Status& status) {
    absl::flat_hash_map<int64_t, std::string> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.swap(in_flight_);
    }
    for (auto& [index, caller_id] : left) {
      Complete(index, std::move(caller_id), status, ScoreResponse());
    }
  }

 private:
  void ReleaseLocked() {
    ready_.clear();
    if (order_.PopReady(&ready_) == 0) return;
    for (StreamResult& result : ready_) sink_(std::move(result));
    room_.notify_all();
  }

  const StreamSink& sink_;
  const int max_in_flight_;
  std::mutex mu_;
  std::condition_variable room_;
  OrderedResults<StreamResult> order_;                   // guarded by mu_
  absl::flat_hash_map<int64_t, std::string> in_flight_;  // guarded by mu_
  std::vector<StreamResult> ready_;                      // guarded by mu_
  bool reader_done_ = false;                             // guarded by mu_
};

}  // namespace

absl::Status ScoreStreamOrdered(const Client& client,
                                const StreamSource& source,
                                const StreamSink& sink,
                                const StreamOptions& options) {
  if (options.max_in_flight < 1) {
    return absl::InvalidArgumentError("max_in_flight must be >= 1");
  }
  grpc::ClientContext context;
  client.ConfigureContext(&context, options.timeout == absl::InfiniteDuration()
                                        ? absl::InfiniteFuture()
                                        : absl::Now() + options.timeout);
  std::unique_ptr<grpc::ClientReaderWriter<ScoreRequest, ScoreResponse>>
      stream = client.stub().ScoreStream(&context);
  StreamBook book(sink, options.max_in_flight);

  std::thread reader([&] {
    ScoreResponse response;
    while (stream->Read(&response)) {
      book.Answered(std::move(response));
      response.Clear();
    }
    book.ReaderDone();
  });

  StreamItem item;
  bool stopped_early = false;
  for (int64_t index = 0; source(&item); ++index) {
    std::string caller_id = item.request.request_id();
    if (!item.status.ok()) {
      book.Complete(index, std::move(caller_id), std::move(item.status),
                    ScoreResponse());
      item = StreamItem();
      continue;
    }
    if (!book.WaitForRoom(index)) {
      // The stream ended early: this input was read but never sent.
      book.Sent(index, std::move(caller_id));
      stopped_early = true;
      break;
    }
    item.request.set_request_id(absl::StrCat(index));
    book.Sent(index, std::move(caller_id));
    if (!stream->Write(item.request)) {  // broken: Finish says why
      stopped_early = true;
      break;
    }
    item = StreamItem();
  }
  stream->WritesDone();
  reader.join();
  absl::Status status = FromGrpcStatus(stream->Finish());
  if (status.ok() && stopped_early) {
    status = absl::InternalError(
        "the server ended the stream before the input was over");
  }
  book.FailInFlight(
      status.ok() ? absl::InternalError("the server closed the stream without "
                                        "answering this request")
                  : status);
  return status;
}

}  // namespace fusion::client
