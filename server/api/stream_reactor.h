// A bidirectional stream of serialized messages with flow control, shared
// by the native ScoreStream and v2's ModelStreamInfer: each message read is
// handed to the protocol's handler at once; responses are written in
// completion order, one write in flight at a time. At most `max_in_flight`
// messages of one stream are in the server, computing or answered but not
// yet written to a client that is slow to read: past that the stream stops
// reading until some are written. The stream ends OK once the client has
// half-closed and every response is written (or the client is gone), or
// UNAVAILABLE after OpenStreams::CloseAll once what was read is answered.
#ifndef FUSION_SERVER_API_STREAM_REACTOR_H_
#define FUSION_SERVER_API_STREAM_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace fusion::api {

using RespondBytes = std::function<void(grpc::ByteBuffer)>;
// Called once per message read, on a gRPC thread. It must call `respond`
// exactly once, from any thread (possibly before returning), with the
// serialized response; errors travel inside the response message.
using StreamHandler =
    std::function<void(const grpc::ByteBuffer& request, RespondBytes respond)>;

// The streams in progress, so that shutdown can end those whose clients
// never half-close (gRPC would cancel them at its deadline: CANCELLED).
// Thread-safe; must outlive the gRPC server whose streams it holds.
class OpenStreams {
 public:
  // Every open stream, and every later one, stops reading, answers what it
  // has read, and ends UNAVAILABLE: "server is shutting down; requests
  // without a response were not started (safe to retry)".
  void CloseAll();
  int64_t count() const;

  // What a stream offers to CloseAll.
  class Stream {
   public:
    // Under CloseAll's lock (so the stream is alive): stops reading; true
    // if nothing is left to answer, and the caller must then FinishClose.
    virtual bool BeginClose() = 0;
    virtual void FinishClose() = 0;

   protected:
    ~Stream() = default;
  };
  // By the stream itself: Add returns false if CloseAll has already run.
  bool Add(Stream* stream);
  void Remove(Stream* stream);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The reactor deletes itself when the stream is done; `open` (may be null)
// tracks it meanwhile.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewStreamReactor(
    StreamHandler handle, int max_in_flight, OpenStreams* open);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_STREAM_REACTOR_H_
