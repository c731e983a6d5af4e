// A bidirectional stream of serialized messages with flow control, shared
// by the native ScoreStream and v2's ModelStreamInfer: each message read is
// handed to the protocol's handler at once; responses are written in
// completion order, one write in flight at a time. At most `max_in_flight`
// messages of one stream are in the server: past that the stream stops
// reading until some complete. The stream ends OK once the client has
// half-closed and every response is written (or the client is gone).
#ifndef FUSION_SERVER_API_STREAM_REACTOR_H_
#define FUSION_SERVER_API_STREAM_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <functional>

namespace fusion::api {

using RespondBytes = std::function<void(grpc::ByteBuffer)>;
// Called once per message read, on a gRPC thread. It must call `respond`
// exactly once, from any thread (possibly before returning), with the
// serialized response; errors travel inside the response message.
using StreamHandler =
    std::function<void(const grpc::ByteBuffer& request, RespondBytes respond)>;

// The reactor deletes itself when the stream is done.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewStreamReactor(
    StreamHandler handle, int max_in_flight);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_STREAM_REACTOR_H_
