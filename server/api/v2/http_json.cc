#include "server/api/v2/http_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace fusion::api::v2 {
namespace {

using Json = nlohmann::json;                 // parsing (fast lookups)
using OrderedJson = nlohmann::ordered_json;  // output (field order kept)
using inference::InferParameter;
using inference::InferTensorContents;
using ParameterMap = google::protobuf::Map<std::string, InferParameter>;

// The deepest nesting of arrays accepted in an input's `data`.
constexpr int kMaxDataDepth = 32;

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

constexpr DTypeInfo kDTypes[] = {
    {"BOOL", DType::kBool, 1},     {"UINT8", DType::kUint8, 1},
    {"UINT16", DType::kUint16, 2}, {"UINT32", DType::kUint32, 4},
    {"UINT64", DType::kUint64, 8}, {"INT8", DType::kInt8, 1},
    {"INT16", DType::kInt16, 2},   {"INT32", DType::kInt32, 4},
    {"INT64", DType::kInt64, 8},   {"FP16", DType::kFp16, 2},
    {"FP32", DType::kFp32, 4},     {"FP64", DType::kFp64, 8},
    {"BYTES", DType::kBytes, 0},   {"BF16", DType::kBf16, 2},
};

const DTypeInfo* FindDType(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

absl::Status Invalid(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// The element count of `shape`; nullopt for a negative dimension or an
// overflow.
std::optional<uint64_t> ElementCount(const std::vector<int64_t>& shape) {
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    const uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && count > static_cast<uint64_t>(INT64_MAX) / u) {
      return std::nullopt;
    }
    count *= u;
  }
  return count;
}

// ---- Little-endian encoding ------------------------------------------------

template <typename T>
void AppendLE(std::string* out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  using U = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<
          sizeof(T) == 2, uint16_t,
          std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  U bits;
  std::memcpy(&bits, &value, sizeof(T));
  for (size_t i = 0; i < sizeof(T); ++i) {
    out->push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
}

template <typename T>
T ReadLE(const char* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    bits |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  }
  T value;
  if constexpr (sizeof(T) == 1) {
    const uint8_t b = static_cast<uint8_t>(bits);
    std::memcpy(&value, &b, 1);
  } else if constexpr (sizeof(T) == 2) {
    const uint16_t b = static_cast<uint16_t>(bits);
    std::memcpy(&value, &b, 2);
  } else if constexpr (sizeof(T) == 4) {
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&value, &b, 4);
  } else {
    std::memcpy(&value, &bits, 8);
  }
  return value;
}

void AppendBytesElement(std::string* out, const std::string& element) {
  AppendLE<uint32_t>(out, static_cast<uint32_t>(element.size()));
  out->append(element);
}

// Splits BYTES raw data (4-byte little-endian length, then the bytes) into
// its elements; "" on success, else what is wrong.
std::string SplitRawBytes(absl::string_view raw,
                          std::vector<std::string>* out) {
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return absl::StrCat("BYTES element ", out->size(),
                          " has a truncated 4-byte length");
    }
    const uint32_t len = ReadLE<uint32_t>(raw.data() + pos);
    pos += 4;
    if (raw.size() - pos < len) {
      return absl::StrCat("BYTES element ", out->size(), " of ", len,
                          " bytes runs past the data's end");
    }
    out->emplace_back(raw.substr(pos, len));
    pos += len;
  }
  return "";
}

// "" when `raw` holds exactly `count` elements of `dtype`, else what is
// wrong.
std::string CheckRaw(absl::string_view raw, const DTypeInfo& dtype,
                     uint64_t count, const std::vector<int64_t>& shape) {
  if (dtype.type == DType::kBytes) {
    std::vector<std::string> elements;
    std::string error = SplitRawBytes(raw, &elements);
    if (!error.empty()) return error;
    if (elements.size() != count) {
      return absl::StrCat("binary data holds ", elements.size(),
                          " BYTES elements, shape ", ShapeString(shape),
                          " has ", count);
    }
    return "";
  }
  if (count > std::numeric_limits<uint64_t>::max() / dtype.size ||
      raw.size() != count * dtype.size) {
    return absl::StrCat("binary data of ", raw.size(),
                        " bytes does not match shape ", ShapeString(shape),
                        " of ", dtype.name, " (", count, " elements of ",
                        dtype.size, " bytes)");
  }
  return "";
}

// ---- Typed contents ---------------------------------------------------------

int TypedSize(const InferTensorContents& c, DType t) {
  switch (t) {
    case DType::kBool:
      return c.bool_contents_size();
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
      return c.int_contents_size();
    case DType::kInt64:
      return c.int64_contents_size();
    case DType::kUint8:
    case DType::kUint16:
    case DType::kUint32:
      return c.uint_contents_size();
    case DType::kUint64:
      return c.uint64_contents_size();
    case DType::kFp32:
      return c.fp32_contents_size();
    case DType::kFp64:
      return c.fp64_contents_size();
    case DType::kBytes:
      return c.bytes_contents_size();
    case DType::kFp16:
    case DType::kBf16:
      return -1;  // no typed form
  }
  return -1;
}

// Encodes typed contents little-endian; "" on success, else what is wrong.
std::string TypedToRaw(const InferTensorContents& c, const DTypeInfo& dtype,
                       uint64_t count, std::string* out) {
  const int size = TypedSize(c, dtype.type);
  if (size < 0) {
    return absl::StrCat(dtype.name, " has no typed contents");
  }
  if (static_cast<uint64_t>(size) != count) {
    return absl::StrCat("contents hold ", size, " elements of ", dtype.name,
                        ", shape has ", count);
  }
  if (dtype.size > 0) out->reserve(out->size() + count * dtype.size);
  for (int i = 0; i < size; ++i) {
    switch (dtype.type) {
      case DType::kBool:
        AppendLE<uint8_t>(out, c.bool_contents(i) ? 1 : 0);
        break;
      case DType::kInt8:
        AppendLE<int8_t>(out, static_cast<int8_t>(c.int_contents(i)));
        break;
      case DType::kInt16:
        AppendLE<int16_t>(out, static_cast<int16_t>(c.int_contents(i)));
        break;
      case DType::kInt32:
        AppendLE<int32_t>(out, c.int_contents(i));
        break;
      case DType::kInt64:
        AppendLE<int64_t>(out, c.int64_contents(i));
        break;
      case DType::kUint8:
        AppendLE<uint8_t>(out, static_cast<uint8_t>(c.uint_contents(i)));
        break;
      case DType::kUint16:
        AppendLE<uint16_t>(out, static_cast<uint16_t>(c.uint_contents(i)));
        break;
      case DType::kUint32:
        AppendLE<uint32_t>(out, c.uint_contents(i));
        break;
      case DType::kUint64:
        AppendLE<uint64_t>(out, c.uint64_contents(i));
        break;
      case DType::kFp32:
        AppendLE<float>(out, c.fp32_contents(i));
        break;
      case DType::kFp64:
        AppendLE<double>(out, c.fp64_contents(i));
        break;
      case DType::kBytes:
        AppendBytesElement(out, c.bytes_contents(i));
        break;
      case DType::kFp16:
      case DType::kBf16:
        break;
    }
  }
  return "";
}

// ---- JSON numbers -----------------------------------------------------------

// A float as the double closest to its shortest round-trip decimal form, so
// that 0.1f prints as 0.1 (not 0.10000000149011612) and reads back as the
// same float; null for NaN and infinities.
OrderedJson FloatJson(float f) {
  if (!std::isfinite(f)) return nullptr;
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), f);
  double d = static_cast<double>(f);
  if (r.ec == std::errc()) {
    double parsed = 0;
    const std::from_chars_result p = std::from_chars(buf, r.ptr, parsed);
    if (p.ec == std::errc() && static_cast<float>(parsed) == f) d = parsed;
  }
  return d;
}

OrderedJson DoubleJson(double d) {
  if (!std::isfinite(d)) return nullptr;
  return d;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  uint32_t bits;
  if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Tensor data as a flat JSON array, from typed contents.
std::string TypedToJson(const InferTensorContents& c, const DTypeInfo& dtype,
                        uint64_t count, OrderedJson* out) {
  const int size = TypedSize(c, dtype.type);
  if (size < 0) {
    return absl::StrCat(dtype.name, " has no typed contents");
  }
  if (static_cast<uint64_t>(size) != count) {
    return absl::StrCat("contents hold ", size, " elements of ", dtype.name,
                        ", shape has ", count);
  }
  *out = OrderedJson::array();
  auto& array = out->get_ref<OrderedJson::array_t&>();
  array.reserve(count);
  for (int i = 0; i < size; ++i) {
    switch (dtype.type) {
      case DType::kBool:
        array.emplace_back(c.bool_contents(i));
        break;
      case DType::kInt8:
      case DType::kInt16:
      case DType::kInt32:
        array.emplace_back(c.int_contents(i));
        break;
      case DType::kInt64:
        array.emplace_back(c.int64_contents(i));
        break;
      case DType::kUint8:
      case DType::kUint16:
      case DType::kUint32:
        array.emplace_back(c.uint_contents(i));
        break;
      case DType::kUint64:
        array.emplace_back(c.uint64_contents(i));
        break;
      case DType::kFp32:
        array.push_back(FloatJson(c.fp32_contents(i)));
        break;
      case DType::kFp64:
        array.push_back(DoubleJson(c.fp64_contents(i)));
        break;
      case DType::kBytes:
        array.emplace_back(c.bytes_contents(i));
        break;
      case DType::kFp16:
      case DType::kBf16:
        break;
    }
  }
  return "";
}

// Tensor data as a flat JSON array, from little-endian raw data.
std::string RawToJson(absl::string_view raw, const DTypeInfo& dtype,
                      uint64_t count, const std::vector<int64_t>& shape,
                      OrderedJson* out) {
  std::string error = CheckRaw(raw, dtype, count, shape);
  if (!error.empty()) return error;
  *out = OrderedJson::array();
  auto& array = out->get_ref<OrderedJson::array_t&>();
  if (dtype.type == DType::kBytes) {
    std::vector<std::string> elements;
    SplitRawBytes(raw, &elements);
    for (std::string& e : elements) array.emplace_back(std::move(e));
    return "";
  }
  array.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const char* p = raw.data() + i * dtype.size;
    switch (dtype.type) {
      case DType::kBool:
        array.emplace_back(*p != 0);
        break;
      case DType::kUint8:
        array.emplace_back(ReadLE<uint8_t>(p));
        break;
      case DType::kUint16:
        array.emplace_back(ReadLE<uint16_t>(p));
        break;
      case DType::kUint32:
        array.emplace_back(ReadLE<uint32_t>(p));
        break;
      case DType::kUint64:
        array.emplace_back(ReadLE<uint64_t>(p));
        break;
      case DType::kInt8:
        array.emplace_back(ReadLE<int8_t>(p));
        break;
      case DType::kInt16:
        array.emplace_back(ReadLE<int16_t>(p));
        break;
      case DType::kInt32:
        array.emplace_back(ReadLE<int32_t>(p));
        break;
      case DType::kInt64:
        array.emplace_back(ReadLE<int64_t>(p));
        break;
      case DType::kFp16:
        array.push_back(FloatJson(HalfToFloat(ReadLE<uint16_t>(p))));
        break;
      case DType::kBf16:
        array.push_back(FloatJson(Bf16ToFloat(ReadLE<uint16_t>(p))));
        break;
      case DType::kFp32:
        array.push_back(FloatJson(ReadLE<float>(p)));
        break;
      case DType::kFp64:
        array.push_back(DoubleJson(ReadLE<double>(p)));
        break;
      case DType::kBytes:
        break;
    }
  }
  return "";
}

// ---- Request parsing
// ----------------------------------------------------------

const char* JsonTypeName(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// `data`'s elements, row-major: a lone scalar, a flat array (no element is
// an array) of any length, or arrays nested exactly as `shape`.
class DataLeaves {
 public:
  // `path` and `tag` (" (NAME)") are for error messages.
  static absl::StatusOr<DataLeaves> Collect(const Json& data,
                                            const std::vector<int64_t>& shape,
                                            const std::string& path,
                                            const std::string& tag) {
    DataLeaves leaves(shape);
    if (!data.is_array()) {
      leaves.leaves_.push_back(&data);
      leaves.scalar_ = true;
      return leaves;
    }
    leaves.nested_ = !data.empty() && data[0].is_array();
    if (!leaves.nested_) {
      leaves.leaves_.reserve(data.size());
      for (const Json& element : data) leaves.leaves_.push_back(&element);
      return leaves;
    }
    std::vector<size_t> index;
    absl::Status status = leaves.CollectNested(data, index, path, tag);
    if (!status.ok()) return status;
    return leaves;
  }

  const std::vector<const Json*>& leaves() const { return leaves_; }

  // The path of the i-th element, e.g. "inputs[0].data[1][2]".
  std::string PathOf(size_t i, const std::string& path) const {
    if (scalar_) return path;
    if (!nested_) return absl::StrCat(path, "[", i, "]");
    std::string suffix;
    for (size_t level = shape_.size(); level-- > 0;) {
      const uint64_t dim = static_cast<uint64_t>(shape_[level]);
      suffix = absl::StrCat("[", dim == 0 ? 0 : i % dim, "]", suffix);
      if (dim != 0) i /= dim;
    }
    return path + suffix;
  }

 private:
  explicit DataLeaves(const std::vector<int64_t>& shape) : shape_(shape) {}

  static std::string IndexPath(const std::string& path,
                               const std::vector<size_t>& index) {
    std::string out = path;
    for (size_t i : index) absl::StrAppend(&out, "[", i, "]");
    return out;
  }

  absl::Status CollectNested(const Json& v, std::vector<size_t>& index,
                             const std::string& path, const std::string& tag) {
    const size_t level = index.size();
    if (level == shape_.size()) {  // an element; its type is checked later
      leaves_.push_back(&v);
      return absl::OkStatus();
    }
    if (level >= static_cast<size_t>(kMaxDataDepth)) {
      return Invalid(
          IndexPath(path, index) + tag,
          absl::StrCat("arrays nested deeper than ", kMaxDataDepth, " levels"));
    }
    const uint64_t dim = static_cast<uint64_t>(shape_[level]);
    if (!v.is_array()) {
      return Invalid(
          IndexPath(path, index) + tag,
          absl::StrCat("expected an array of ", dim, " elements (dimension ",
                       level, " of shape ", ShapeString(shape_), "), got ",
                       JsonTypeName(v)));
    }
    if (v.size() != dim) {
      return Invalid(
          IndexPath(path, index) + tag,
          absl::StrCat(v.size(), " elements, but dimension ", level,
                       " of shape ", ShapeString(shape_), " is ", dim));
    }
    for (size_t i = 0; i < v.size(); ++i) {
      index.push_back(i);
      absl::Status status = CollectNested(v[i], index, path, tag);
      index.pop_back();
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  std::vector<int64_t> shape_;
  std::vector<const Json*> leaves_;
  bool scalar_ = false;
  bool nested_ = false;
};

// Reads an integer within [lo, hi]; "" on success, else what is wrong.
std::string ReadSigned(const Json& v, int64_t lo, int64_t hi,
                       const char* dtype_name, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      return absl::StrCat(u, " is out of range for ", dtype_name);
    }
    *out = static_cast<int64_t>(u);
    return "";
  }
  if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < lo || s > hi) {
      return absl::StrCat(s, " is out of range for ", dtype_name);
    }
    *out = s;
    return "";
  }
  return absl::StrCat("expected an integer, got ", JsonTypeName(v));
}

std::string ReadUnsigned(const Json& v, uint64_t hi, const char* dtype_name,
                         uint64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > hi) return absl::StrCat(u, " is out of range for ", dtype_name);
    *out = u;
    return "";
  }
  if (v.is_number_integer()) {  // negative
    return absl::StrCat(v.get<int64_t>(), " is out of range for ", dtype_name);
  }
  return absl::StrCat("expected a non-negative integer, got ", JsonTypeName(v));
}

// Half-way between FLT_MAX and 2^128: doubles from here on round to an
// infinite float.
constexpr double kFloatOverflow = 0x1.ffffffp127;

// Converts one leaf into `c`; "" on success, else what is wrong.
std::string AppendLeaf(const Json& v, const DTypeInfo& dtype,
                       InferTensorContents* c) {
  std::string error;
  switch (dtype.type) {
    case DType::kBool:
      if (!v.is_boolean()) {
        return absl::StrCat("expected a boolean, got ", JsonTypeName(v));
      }
      c->add_bool_contents(v.get<bool>());
      return "";
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64: {
      int64_t lo = INT64_MIN, hi = INT64_MAX;
      if (dtype.type == DType::kInt8) lo = INT8_MIN, hi = INT8_MAX;
      if (dtype.type == DType::kInt16) lo = INT16_MIN, hi = INT16_MAX;
      if (dtype.type == DType::kInt32) lo = INT32_MIN, hi = INT32_MAX;
      int64_t s = 0;
      error = ReadSigned(v, lo, hi, dtype.name, &s);
      if (!error.empty()) return error;
      if (dtype.type == DType::kInt64) {
        c->add_int64_contents(s);
      } else {
        c->add_int_contents(static_cast<int32_t>(s));
      }
      return "";
    }
    case DType::kUint8:
    case DType::kUint16:
    case DType::kUint32:
    case DType::kUint64: {
      uint64_t hi = UINT64_MAX;
      if (dtype.type == DType::kUint8) hi = UINT8_MAX;
      if (dtype.type == DType::kUint16) hi = UINT16_MAX;
      if (dtype.type == DType::kUint32) hi = UINT32_MAX;
      uint64_t u = 0;
      error = ReadUnsigned(v, hi, dtype.name, &u);
      if (!error.empty()) return error;
      if (dtype.type == DType::kUint64) {
        c->add_uint64_contents(u);
      } else {
        c->add_uint_contents(static_cast<uint32_t>(u));
      }
      return "";
    }
    case DType::kFp32: {
      if (!v.is_number()) {
        return absl::StrCat("expected a number, got ", JsonTypeName(v));
      }
      const double d = v.get<double>();
      if (!(std::fabs(d) < kFloatOverflow)) {
        return absl::StrCat(v.dump(), " is out of range for FP32");
      }
      c->add_fp32_contents(static_cast<float>(d));
      return "";
    }
    case DType::kFp64: {
      if (!v.is_number()) {
        return absl::StrCat("expected a number, got ", JsonTypeName(v));
      }
      const double d = v.get<double>();
      if (!std::isfinite(d)) {
        return absl::StrCat(v.dump(), " is out of range for FP64");
      }
      c->add_fp64_contents(d);
      return "";
    }
    case DType::kBytes:
      if (!v.is_string()) {
        return absl::StrCat("expected a string, got ", JsonTypeName(v));
      }
      c->add_bytes_contents(v.get_ref<const std::string&>());
      return "";
    case DType::kFp16:
    case DType::kBf16:
      break;
  }
  return absl::StrCat(dtype.name,
                      " data cannot be given as JSON; send it as binary data");
}

absl::Status JsonToParameter(const Json& v, const std::string& path,
                             InferParameter* p) {
  if (v.is_boolean()) {
    p->set_bool_param(v.get<bool>());
  } else if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      p->set_uint64_param(u);
    } else {
      p->set_int64_param(static_cast<int64_t>(u));
    }
  } else if (v.is_number_integer()) {
    p->set_int64_param(v.get<int64_t>());
  } else if (v.is_number_float()) {
    p->set_double_param(v.get<double>());
  } else if (v.is_string()) {
    p->set_string_param(v.get<std::string>());
  } else {
    return Invalid(path,
                   absl::StrCat("expected a boolean, number or string, got ",
                                JsonTypeName(v)));
  }
  return absl::OkStatus();
}

// Parses `holder`'s optional "parameters" object into `out`; `path` names
// `holder` ("" for the request itself), `tag` its tensor (" (NAME)").
absl::Status ParseParameters(const Json& holder, const std::string& path,
                             const std::string& tag, ParameterMap* out) {
  const auto it = holder.find("parameters");
  if (it == holder.end()) return absl::OkStatus();
  const std::string params_path =
      path.empty() ? "parameters" : absl::StrCat(path, ".parameters");
  if (!it->is_object()) {
    return Invalid(params_path + tag,
                   absl::StrCat("expected an object, got ", JsonTypeName(*it)));
  }
  for (const auto& [key, value] : it->items()) {
    absl::Status status = JsonToParameter(
        value, absl::StrCat(params_path, ".", key, tag), &(*out)[key]);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// A boolean parameter that must be a boolean when present.
absl::StatusOr<std::optional<bool>> BoolParameter(const ParameterMap& params,
                                                  const std::string& path,
                                                  const std::string& tag,
                                                  const std::string& name) {
  const auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  if (it->second.parameter_choice_case() != InferParameter::kBoolParam) {
    return Invalid(
        absl::StrCat(path, path.empty() ? "" : ".", "parameters.", name, tag),
        "expected a boolean");
  }
  return it->second.bool_param();
}

absl::Status RefuseParameter(const ParameterMap& params,
                             const std::string& path, const std::string& tag,
                             const std::string& name, absl::string_view why) {
  if (params.find(name) == params.end()) return absl::OkStatus();
  return Invalid(absl::StrCat(path, ".parameters.", name, tag), why);
}

absl::StatusOr<std::optional<size_t>> ParseHeaderLength(
    std::optional<absl::string_view> header, size_t body_size) {
  if (!header.has_value()) return std::nullopt;
  const absl::string_view value = *header;
  uint64_t n = 0;
  const std::from_chars_result r =
      std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || r.ec != std::errc() ||
      r.ptr != value.data() + value.size()) {
    return Invalid(
        kInferHeaderContentLength,
        absl::StrCat("expected a non-negative integer, got '", value, "'"));
  }
  if (n == 0) {
    return Invalid(kInferHeaderContentLength,
                   "0 (a raw binary request without a JSON header) is not "
                   "supported");
  }
  if (n > body_size) {
    return Invalid(
        kInferHeaderContentLength,
        absl::StrCat(n, " exceeds the body's ", body_size, " bytes"));
  }
  return static_cast<size_t>(n);
}

// One input while the request is parsed.
struct PendingInput {
  const DTypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t count = 0;
  std::optional<uint64_t> binary_size;  // from binary_data_size
};

absl::Status ParseInput(const Json& input, const std::string& path,
                        inference::ModelInferRequest::InferInputTensor* tensor,
                        PendingInput* pending) {
  if (!input.is_object()) {
    return Invalid(
        path, absl::StrCat("expected an object, got ", JsonTypeName(input)));
  }
  // name
  const auto name = input.find("name");
  if (name == input.end()) return Invalid(path + ".name", "missing");
  if (!name->is_string()) {
    return Invalid(path + ".name", absl::StrCat("expected a string, got ",
                                                JsonTypeName(*name)));
  }
  tensor->set_name(name->get<std::string>());
  // From here on, errors name the tensor too.
  const std::string tag = absl::StrCat(" (", tensor->name(), ")");
  // datatype
  const auto datatype = input.find("datatype");
  if (datatype == input.end()) {
    return Invalid(path + ".datatype" + tag, "missing");
  }
  if (!datatype->is_string()) {
    return Invalid(
        path + ".datatype" + tag,
        absl::StrCat("expected a string, got ", JsonTypeName(*datatype)));
  }
  const std::string& dtype_name = datatype->get_ref<const std::string&>();
  pending->dtype = FindDType(dtype_name);
  if (pending->dtype == nullptr) {
    return Invalid(path + ".datatype" + tag,
                   absl::StrCat("unknown datatype '", dtype_name, "'"));
  }
  tensor->set_datatype(dtype_name);
  // shape
  const auto shape = input.find("shape");
  if (shape == input.end()) return Invalid(path + ".shape" + tag, "missing");
  if (!shape->is_array()) {
    return Invalid(path + ".shape" + tag,
                   absl::StrCat("expected an array of integers, got ",
                                JsonTypeName(*shape)));
  }
  for (size_t i = 0; i < shape->size(); ++i) {
    const Json& d = (*shape)[i];
    if (!d.is_number_integer() ||
        (!d.is_number_unsigned() && d.get<int64_t>() < 0) ||
        (d.is_number_unsigned() &&
         d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      return Invalid(absl::StrCat(path, ".shape[", i, "]", tag),
                     absl::StrCat("expected a non-negative integer, got ",
                                  d.is_number() ? d.dump() : JsonTypeName(d)));
    }
    pending->shape.push_back(d.get<int64_t>());
    tensor->add_shape(pending->shape.back());
  }
  const std::optional<uint64_t> count = ElementCount(pending->shape);
  if (!count.has_value()) {
    return Invalid(
        path + ".shape" + tag,
        absl::StrCat(ShapeString(pending->shape), " has too many elements"));
  }
  pending->count = *count;
  // parameters
  absl::Status status =
      ParseParameters(input, path, tag, tensor->mutable_parameters());
  if (!status.ok()) return status;
  status =
      RefuseParameter(tensor->parameters(), path, tag, "shared_memory_region",
                      "shared memory is not supported");
  if (!status.ok()) return status;
  const auto binary = tensor->parameters().find("binary_data_size");
  if (binary != tensor->parameters().end()) {
    const InferParameter& p = binary->second;
    if (p.parameter_choice_case() == InferParameter::kInt64Param &&
        p.int64_param() >= 0) {
      pending->binary_size = static_cast<uint64_t>(p.int64_param());
    } else if (p.parameter_choice_case() == InferParameter::kUint64Param) {
      pending->binary_size = p.uint64_param();
    } else {
      return Invalid(path + ".parameters.binary_data_size" + tag,
                     "expected a non-negative integer");
    }
  }
  // data
  const auto data = input.find("data");
  if (pending->binary_size.has_value()) {
    if (data != input.end()) {
      return Invalid(path + ".data" + tag,
                     "not allowed with parameters.binary_data_size");
    }
    return absl::OkStatus();
  }
  if (data == input.end()) return Invalid(path + ".data" + tag, "missing");
  const std::string data_path = path + ".data";
  absl::StatusOr<DataLeaves> leaves =
      DataLeaves::Collect(*data, pending->shape, data_path, tag);
  if (!leaves.ok()) return leaves.status();
  if (leaves->leaves().size() != pending->count) {
    return Invalid(
        data_path + tag,
        absl::StrCat(leaves->leaves().size(), " elements, but shape ",
                     ShapeString(pending->shape), " has ", pending->count));
  }
  InferTensorContents* contents = tensor->mutable_contents();
  for (size_t i = 0; i < leaves->leaves().size(); ++i) {
    const std::string error =
        AppendLeaf(*leaves->leaves()[i], *pending->dtype, contents);
    if (!error.empty()) {
      return Invalid(leaves->PathOf(i, data_path) + tag, error);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseOutput(
    const Json& output, const std::string& path,
    inference::ModelInferRequest::InferRequestedOutputTensor* tensor,
    OutputEncoding* encoding) {
  if (!output.is_object()) {
    return Invalid(
        path, absl::StrCat("expected an object, got ", JsonTypeName(output)));
  }
  const auto name = output.find("name");
  if (name == output.end()) return Invalid(path + ".name", "missing");
  if (!name->is_string()) {
    return Invalid(path + ".name", absl::StrCat("expected a string, got ",
                                                JsonTypeName(*name)));
  }
  tensor->set_name(name->get<std::string>());
  const std::string tag = absl::StrCat(" (", tensor->name(), ")");
  absl::Status status =
      ParseParameters(output, path, tag, tensor->mutable_parameters());
  if (!status.ok()) return status;
  status =
      RefuseParameter(tensor->parameters(), path, tag, "shared_memory_region",
                      "shared memory is not supported");
  if (!status.ok()) return status;
  status = RefuseParameter(tensor->parameters(), path, tag, "classification",
                           "the classification extension is not supported");
  if (!status.ok()) return status;
  absl::StatusOr<std::optional<bool>> binary =
      BoolParameter(tensor->parameters(), path, tag, "binary_data");
  if (!binary.ok()) return binary.status();
  if (binary->has_value()) {
    encoding->binary_by_output[tensor->name()] = **binary;
  }
  return absl::OkStatus();
}

// ---- Proto messages as JSON ------------------------------------------------

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

OrderedJson MessageToJson(const Message& m, bool print_unset_messages);

OrderedJson EnumJson(const FieldDescriptor* f, int number) {
  const google::protobuf::EnumValueDescriptor* value =
      f->enum_type()->FindValueByNumber(number);
  if (value == nullptr) return number;
  return value->name();
}

OrderedJson SingularJson(const Message& m, const FieldDescriptor* f,
                         bool print_unset_messages) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return DoubleJson(r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FloatJson(r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumJson(f, r->GetEnumValue(m, f));
    case FieldDescriptor::CPPTYPE_STRING:
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        return absl::Base64Escape(r->GetString(m, f));
      }
      return r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(r->GetMessage(m, f), print_unset_messages);
  }
  return nullptr;
}

OrderedJson RepeatedJson(const Message& m, const FieldDescriptor* f, int i,
                         bool print_unset_messages) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r->GetRepeatedInt32(m, f, i);
    case FieldDescriptor::CPPTYPE_INT64:
      return r->GetRepeatedInt64(m, f, i);
    case FieldDescriptor::CPPTYPE_UINT32:
      return r->GetRepeatedUInt32(m, f, i);
    case FieldDescriptor::CPPTYPE_UINT64:
      return r->GetRepeatedUInt64(m, f, i);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return DoubleJson(r->GetRepeatedDouble(m, f, i));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FloatJson(r->GetRepeatedFloat(m, f, i));
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetRepeatedBool(m, f, i);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumJson(f, r->GetRepeatedEnumValue(m, f, i));
    case FieldDescriptor::CPPTYPE_STRING:
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        return absl::Base64Escape(r->GetRepeatedString(m, f, i));
      }
      return r->GetRepeatedString(m, f, i);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(r->GetRepeatedMessage(m, f, i),
                           print_unset_messages);
  }
  return nullptr;
}

// A map key as JSON object keys are: a string.
std::string MapKeyString(const Message& entry, const FieldDescriptor* key) {
  const OrderedJson k = SingularJson(entry, key, false);
  return k.is_string() ? k.get<std::string>() : k.dump();
}

// Every field under its proto name: scalars and repeated fields always
// (defaults included), a oneof member or a field with presence only when
// set, an unset message only with `print_unset_messages` (as its defaults).
OrderedJson MessageToJson(const Message& m, bool print_unset_messages) {
  OrderedJson out = OrderedJson::object();
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) {
      OrderedJson object = OrderedJson::object();
      const FieldDescriptor* key = f->message_type()->map_key();
      const FieldDescriptor* value = f->message_type()->map_value();
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        const Message& entry = r->GetRepeatedMessage(m, f, j);
        object[MapKeyString(entry, key)] =
            SingularJson(entry, value, print_unset_messages);
      }
      out[f->name()] = std::move(object);
      continue;
    }
    if (f->is_repeated()) {
      OrderedJson array = OrderedJson::array();
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        array.push_back(RepeatedJson(m, f, j, print_unset_messages));
      }
      out[f->name()] = std::move(array);
      continue;
    }
    if (f->real_containing_oneof() != nullptr ||
        (f->has_presence() &&
         f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE)) {
      if (!r->HasField(m, f)) continue;
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
               !print_unset_messages && !r->HasField(m, f)) {
      continue;
    }
    out[f->name()] = SingularJson(m, f, print_unset_messages);
  }
  return out;
}

OrderedJson ParameterToJson(const InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case InferParameter::kBoolParam:
      return p.bool_param();
    case InferParameter::kInt64Param:
      return p.int64_param();
    case InferParameter::kStringParam:
      return p.string_param();
    case InferParameter::kDoubleParam:
      return DoubleJson(p.double_param());
    case InferParameter::kUint64Param:
      return p.uint64_param();
    case InferParameter::PARAMETER_CHOICE_NOT_SET:
      break;
  }
  return nullptr;
}

OrderedJson ParametersToJson(const ParameterMap& params) {
  // Sorted by key, so that the output does not depend on the map's order.
  std::map<std::string, const InferParameter*> sorted;
  for (const auto& [key, value] : params) sorted[key] = &value;
  OrderedJson out = OrderedJson::object();
  for (const auto& [key, value] : sorted) out[key] = ParameterToJson(*value);
  return out;
}

}  // namespace

bool OutputEncoding::Binary(const std::string& output_name) const {
  const auto it = binary_by_output.find(output_name);
  return it != binary_by_output.end() ? it->second : binary_default;
}

absl::StatusOr<ParsedInferRequest> ParseInferRequest(
    absl::string_view body,
    std::optional<absl::string_view> header_content_length,
    const std::string& model_name, const std::string& model_version) {
  absl::StatusOr<std::optional<size_t>> header_length =
      ParseHeaderLength(header_content_length, body.size());
  if (!header_length.ok()) return header_length.status();
  const size_t json_size = header_length->value_or(body.size());
  const absl::string_view json_text = body.substr(0, json_size);
  const absl::string_view tail = body.substr(json_size);

  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    // parse_error, or out_of_range for a number like 1e400.
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
      what = what.substr(bracket + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", what));
  }
  if (!root.is_object()) {
    return Invalid("request", absl::StrCat("expected a JSON object, got ",
                                           JsonTypeName(root)));
  }

  ParsedInferRequest parsed;
  inference::ModelInferRequest& request = parsed.request;
  request.set_model_name(model_name);
  request.set_model_version(model_version);

  if (const auto id = root.find("id"); id != root.end()) {
    if (!id->is_string()) {
      return Invalid(
          "id", absl::StrCat("expected a string, got ", JsonTypeName(*id)));
    }
    request.set_id(id->get<std::string>());
  }
  absl::Status status =
      ParseParameters(root, "", "", request.mutable_parameters());
  if (!status.ok()) return status;
  absl::StatusOr<std::optional<bool>> binary_output =
      BoolParameter(request.parameters(), "", "", "binary_data_output");
  if (!binary_output.ok()) return binary_output.status();
  parsed.encoding.binary_default = binary_output->value_or(false);

  const auto inputs = root.find("inputs");
  if (inputs == root.end()) return Invalid("inputs", "missing");
  if (!inputs->is_array()) {
    return Invalid("inputs", absl::StrCat("expected an array, got ",
                                          JsonTypeName(*inputs)));
  }
  std::vector<PendingInput> pending(inputs->size());
  bool any_binary = false;
  for (size_t i = 0; i < inputs->size(); ++i) {
    status = ParseInput((*inputs)[i], absl::StrCat("inputs[", i, "]"),
                        request.add_inputs(), &pending[i]);
    if (!status.ok()) return status;
    any_binary = any_binary || pending[i].binary_size.has_value();
  }

  if (const auto outputs = root.find("outputs"); outputs != root.end()) {
    if (!outputs->is_array()) {
      return Invalid("outputs", absl::StrCat("expected an array, got ",
                                             JsonTypeName(*outputs)));
    }
    for (size_t i = 0; i < outputs->size(); ++i) {
      status = ParseOutput((*outputs)[i], absl::StrCat("outputs[", i, "]"),
                           request.add_outputs(), &parsed.encoding);
      if (!status.ok()) return status;
    }
  }

  // The binary tail, in input order.
  size_t offset = 0;
  std::vector<absl::string_view> binary_data(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    if (!pending[i].binary_size.has_value()) continue;
    const uint64_t size = *pending[i].binary_size;
    const std::string path = absl::StrCat("inputs[", i, "]");
    const std::string tag =
        absl::StrCat(" (", request.inputs(static_cast<int>(i)).name(), ")");
    if (size > tail.size() - offset) {
      return Invalid(
          path + ".parameters.binary_data_size" + tag,
          absl::StrCat(size, " bytes, but only ", tail.size() - offset,
                       " bytes of binary data are left in the body",
                       header_length->has_value()
                           ? ""
                           : absl::StrCat(" (no ", kInferHeaderContentLength,
                                          " header)")));
    }
    binary_data[i] = tail.substr(offset, size);
    offset += size;
    const std::string error = CheckRaw(binary_data[i], *pending[i].dtype,
                                       pending[i].count, pending[i].shape);
    if (!error.empty()) return Invalid(path + tag, error);
  }
  if (offset != tail.size()) {
    return Invalid(kInferHeaderContentLength,
                   absl::StrCat("the body has ", tail.size() - offset,
                                " bytes after the JSON and the inputs' "
                                "binary data (",
                                offset, " bytes)"));
  }

  // One representation for every input: raw when any is binary.
  if (any_binary) {
    for (size_t i = 0; i < pending.size(); ++i) {
      std::string* raw = request.add_raw_input_contents();
      auto* tensor = request.mutable_inputs(static_cast<int>(i));
      if (pending[i].binary_size.has_value()) {
        raw->assign(binary_data[i].data(), binary_data[i].size());
        continue;
      }
      const std::string error = TypedToRaw(
          tensor->contents(), *pending[i].dtype, pending[i].count, raw);
      if (!error.empty()) {
        return absl::InternalError(absl::StrCat("inputs[", i, "]: ", error));
      }
      tensor->clear_contents();
    }
  }
  return parsed;
}

absl::StatusOr<EncodedInferResponse> EncodeInferResponse(
    const inference::ModelInferResponse& response,
    const OutputEncoding& encoding) {
  const bool raw = response.raw_output_contents_size() > 0;
  if (raw && response.raw_output_contents_size() != response.outputs_size()) {
    return absl::InternalError(absl::StrCat(
        "the response has ", response.raw_output_contents_size(),
        " raw_output_contents for ", response.outputs_size(), " outputs"));
  }
  OrderedJson root = OrderedJson::object();
  if (!response.id().empty()) root["id"] = response.id();
  root["model_name"] = response.model_name();
  root["model_version"] = response.model_version();
  if (!response.parameters().empty()) {
    root["parameters"] = ParametersToJson(response.parameters());
  }
  OrderedJson outputs = OrderedJson::array();
  std::string tail;
  bool has_binary = false;
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& output = response.outputs(i);
    const std::string path =
        absl::StrCat("outputs[", i, "] (", output.name(), ")");
    const DTypeInfo* dtype = FindDType(output.datatype());
    if (dtype == nullptr) {
      return absl::InternalError(
          absl::StrCat(path, ": unknown datatype '", output.datatype(), "'"));
    }
    const std::vector<int64_t> shape(output.shape().begin(),
                                     output.shape().end());
    const std::optional<uint64_t> count = ElementCount(shape);
    if (!count.has_value()) {
      return absl::InternalError(
          absl::StrCat(path, ": bad shape ", ShapeString(shape)));
    }
    OrderedJson o = OrderedJson::object();
    o["name"] = output.name();
    o["datatype"] = output.datatype();
    o["shape"] = shape;
    OrderedJson params = ParametersToJson(output.parameters());
    std::string error;
    if (encoding.Binary(output.name())) {
      std::string bytes;
      if (raw) {
        const std::string& data = response.raw_output_contents(i);
        error = CheckRaw(data, *dtype, *count, shape);
        if (error.empty()) bytes = data;
      } else {
        error = TypedToRaw(output.contents(), *dtype, *count, &bytes);
      }
      if (!error.empty()) {
        return absl::InternalError(absl::StrCat(path, ": ", error));
      }
      params["binary_data_size"] = bytes.size();
      o["parameters"] = std::move(params);
      tail += bytes;
      has_binary = true;
    } else {
      if (!params.empty()) o["parameters"] = std::move(params);
      OrderedJson data;
      error = raw ? RawToJson(response.raw_output_contents(i), *dtype, *count,
                              shape, &data)
                  : TypedToJson(output.contents(), *dtype, *count, &data);
      if (!error.empty()) {
        return absl::InternalError(absl::StrCat(path, ": ", error));
      }
      o["data"] = std::move(data);
    }
    outputs.push_back(std::move(o));
  }
  root["outputs"] = std::move(outputs);

  EncodedInferResponse encoded;
  encoded.body = Dump(root);
  encoded.json_size = encoded.body.size();
  encoded.has_binary = has_binary;
  encoded.body += tail;
  return encoded;
}

std::string ServerMetadataToJson(const inference::ServerMetadataResponse& m) {
  return Dump(MessageToJson(m, false));
}

std::string ModelMetadataToJson(const inference::ModelMetadataResponse& m) {
  return Dump(MessageToJson(m, false));
}

std::string ModelConfigToJson(const inference::ModelConfigResponse& c) {
  return Dump(MessageToJson(c.config(), false));
}

std::string ModelStatisticsToJson(const inference::ModelStatisticsResponse& s) {
  return Dump(MessageToJson(s, true));
}

std::string ModelReadyToJson(const std::string& name, bool ready) {
  OrderedJson out = OrderedJson::object();
  out["name"] = name;
  out["ready"] = ready;
  return Dump(out);
}

std::string ErrorToJson(absl::string_view message) {
  OrderedJson out = OrderedJson::object();
  out["error"] = std::string(message);
  return Dump(out);
}

int HttpStatusFromCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

}  // namespace fusion::api::v2
