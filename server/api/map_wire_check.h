// Protobuf's C++ parser drops a map entry's key or value that arrives with
// the wrong wire type (map entries keep no unknown fields), so the entry
// reads as the type's default: `features { key: "amount" value: <varint> }`
// parses as amount = 0.0 and would be scored. CheckWireTypes (on the parsed
// message) cannot see that; this walks the serialized bytes instead.
#ifndef FUSION_SERVER_API_MAP_WIRE_CHECK_H_
#define FUSION_SERVER_API_MAP_WIRE_CHECK_H_

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace fusion::api {

// INVALID_ARGUMENT naming the first entry of a map field of `type` (top
// level only) whose key or value has a wire type other than the declared
// one, e.g. "features['amount']: value sent with wire type varint, declared
// float". OK otherwise, and also for bytes that do not parse (the parser has
// its own error for those). Reads `wire` to its end.
absl::Status CheckMapEntryWireTypes(
    google::protobuf::io::ZeroCopyInputStream& wire,
    const google::protobuf::Descriptor& type);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_MAP_WIRE_CHECK_H_
