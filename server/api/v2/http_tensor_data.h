// Internal to the v2 HTTP/JSON translation (http_json.h): the datatypes,
// little-endian tensor data and JSON numbers shared by its request side
// (http_json_request.cc) and its response side (http_json.cc). Not an API.
#ifndef FUSION_SERVER_API_V2_HTTP_TENSOR_DATA_H_
#define FUSION_SERVER_API_V2_HTTP_TENSOR_DATA_H_

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "inference/grpc_service.pb.h"

namespace fusion::api::v2::http_internal {

using Json = nlohmann::json;                 // parsing (fast lookups)
using OrderedJson = nlohmann::ordered_json;  // output (field order kept)
using inference::InferParameter;
using inference::InferTensorContents;
using ParameterMap = google::protobuf::Map<std::string, InferParameter>;

// The deepest nesting of arrays accepted in an input's `data`.
inline constexpr int kMaxDataDepth = 32;

enum class DType {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,
  kBf16,
};

struct DTypeInfo {
  const char* name;
  DType type;
  size_t size;  // bytes per element; 0 for BYTES
};

// Declarations shared by http_json.cc (responses, protos as JSON) and
// http_json_request.cc (request parsing); defined in http_tensor_data.cc.
const DTypeInfo* FindDType(absl::string_view name);
absl::Status Invalid(absl::string_view path, absl::string_view what);
std::string Dump(const OrderedJson& j);
std::string ShapeString(const std::vector<int64_t>& shape);
// The element count of `shape`; nullopt for a negative dimension or an
// overflow.
std::optional<uint64_t> ElementCount(const std::vector<int64_t>& shape);
// "" when `raw` holds exactly `count` elements of `dtype`, else what is
// wrong.
std::string CheckRaw(absl::string_view raw, const DTypeInfo& dtype,
                     uint64_t count, const std::vector<int64_t>& shape);
// Encodes typed contents little-endian; "" on success, else what is wrong.
std::string TypedToRaw(const InferTensorContents& c, const DTypeInfo& dtype,
                       uint64_t count, std::string* out);
// A float as the double closest to its shortest round-trip decimal form, so
// that 0.1f prints as 0.1 (not 0.10000000149011612) and reads back as the
// same float; null for NaN and infinities.
OrderedJson FloatJson(float f);
OrderedJson DoubleJson(double d);
// Tensor data as a flat JSON array, from typed contents.
std::string TypedToJson(const InferTensorContents& c, const DTypeInfo& dtype,
                        uint64_t count, OrderedJson* out);
// Tensor data as a flat JSON array, from little-endian raw data.
std::string RawToJson(absl::string_view raw, const DTypeInfo& dtype,
                      uint64_t count, const std::vector<int64_t>& shape,
                      OrderedJson* out);

}  // namespace fusion::api::v2::http_internal

#endif  // FUSION_SERVER_API_V2_HTTP_TENSOR_DATA_H_
