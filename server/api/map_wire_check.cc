#include "server/api/map_wire_check.h"

#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format.h"
#include "google/protobuf/wire_format_lite.h"
#include "server/api/request_validation.h"

namespace fusion::api {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormat;
using google::protobuf::internal::WireFormatLite;

const char* WireTypeName(WireFormatLite::WireType type) {
  switch (type) {
    case WireFormatLite::WIRETYPE_VARINT:
      return "varint";
    case WireFormatLite::WIRETYPE_FIXED64:
      return "fixed64";
    case WireFormatLite::WIRETYPE_LENGTH_DELIMITED:
      return "length-delimited";
    case WireFormatLite::WIRETYPE_START_GROUP:
    case WireFormatLite::WIRETYPE_END_GROUP:
      return "group";
    case WireFormatLite::WIRETYPE_FIXED32:
      return "fixed32";
  }
  return "unknown";
}

struct EntryCheck {
  bool parsed = true;                      // false: the bytes are malformed
  const FieldDescriptor* wrong = nullptr;  // key or value, mistyped
  WireFormatLite::WireType sent = WireFormatLite::WIRETYPE_VARINT;
  std::string key;  // a string key, when one was read
  bool has_key = false;
};

// Reads one map entry (the stream limited to its bytes).
EntryCheck ReadEntry(google::protobuf::io::CodedInputStream& in,
                     const google::protobuf::Descriptor& entry) {
  EntryCheck check;
  while (const uint32_t tag = in.ReadTag()) {
    const FieldDescriptor* field =
        entry.FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
    const WireFormatLite::WireType sent = WireFormatLite::GetTagWireType(tag);
    if (field != nullptr && sent != WireFormat::WireTypeForField(field) &&
        check.wrong == nullptr) {
      check.wrong = field;
      check.sent = sent;
    }
    const bool string_key = field != nullptr && field->number() == 1 &&
                            field->type() == FieldDescriptor::TYPE_STRING &&
                            sent == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (string_key) {
      uint32_t length = 0;
      check.parsed = in.ReadVarint32(&length) && length <= INT32_MAX &&
                     in.ReadString(&check.key, static_cast<int>(length));
      check.has_key = check.parsed;
    } else {
      check.parsed = WireFormatLite::SkipField(&in, tag);
    }
    if (!check.parsed) return check;
  }
  check.parsed = in.ConsumedEntireMessage();
  return check;
}

}  // namespace

absl::Status CheckMapEntryWireTypes(
    google::protobuf::io::ZeroCopyInputStream& wire,
    const google::protobuf::Descriptor& type) {
  google::protobuf::io::CodedInputStream in(&wire);
  std::map<const FieldDescriptor*, int> entries;  // read so far, per map
  while (const uint32_t tag = in.ReadTag()) {
    const FieldDescriptor* field =
        type.FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
    if (field == nullptr || !field->is_map() ||
        WireFormatLite::GetTagWireType(tag) !=
            WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return absl::OkStatus();
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length) || length > INT32_MAX) {
      return absl::OkStatus();
    }
    const auto limit = in.PushLimit(static_cast<int>(length));
    const EntryCheck check = ReadEntry(in, *field->message_type());
    in.PopLimit(limit);
    if (!check.parsed) return absl::OkStatus();
    if (check.wrong != nullptr) {
      const std::string entry =
          check.has_key ? absl::StrCat("['", QuoteClientText(check.key), "']")
                        : absl::StrCat(" entry ", entries[field]);
      return absl::InvalidArgumentError(
          absl::StrCat(field->name(), entry, ": ", check.wrong->name(),
                       " sent with wire type ", WireTypeName(check.sent),
                       ", declared ", check.wrong->type_name()));
    }
    ++entries[field];
  }
  return absl::OkStatus();
}

}  // namespace fusion::api
