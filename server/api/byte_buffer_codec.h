// Protobuf messages to and from gRPC's ByteBuffer, for the services that
// take raw bytes (to answer a malformed request with INVALID_ARGUMENT and
// say why, where gRPC's own parsing would answer UNIMPLEMENTED).
#ifndef FUSION_SERVER_API_BYTE_BUFFER_CODEC_H_
#define FUSION_SERVER_API_BYTE_BUFFER_CODEC_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/status/status.h"
#include "server/api/map_wire_check.h"

namespace fusion::api {

// False when `bytes` is not a valid `Message` (malformed, or a string
// field that is not UTF-8); `message` then holds what could be read.
template <typename Message>
bool FromByteBuffer(const grpc::ByteBuffer& bytes, Message& message) {
  grpc::ByteBuffer copy(bytes);  // Deserialize consumes its buffer
  return grpc::SerializationTraits<Message>::Deserialize(&copy, &message).ok();
}

// CheckMapEntryWireTypes over `bytes`, a serialized `type`: a map entry
// whose value the parser dropped for its wire type (map_wire_check.h).
inline absl::Status CheckMapWireTypes(
    const grpc::ByteBuffer& bytes, const google::protobuf::Descriptor& type) {
  grpc::ByteBuffer copy(bytes);  // the reader consumes its buffer
  grpc::ProtoBufferReader wire(&copy);
  return CheckMapEntryWireTypes(wire, type);
}

template <typename Message>
grpc::ByteBuffer ToByteBuffer(const Message& message) {
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  grpc::SerializationTraits<Message>::Serialize(message, &bytes, &own_buffer);
  return bytes;
}

// For a raw unary handler gRPC invoked although the request message never
// arrived (the call's deadline passed or the client left first:
// `request_bytes->Valid()` is false): ends the call without counting it as
// an invalid request.
inline void FinishNeverArrived(grpc::ServerUnaryReactor* reactor) {
  reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                               "the request message never arrived"));
}

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_BYTE_BUFFER_CODEC_H_
