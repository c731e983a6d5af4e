#include "server/api/v2/http_tensor_data.h"

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

namespace fusion::api::v2::http_internal {
namespace {

constexpr DTypeInfo kDTypes[] = {
    {"BOOL", DType::kBool, 1},     {"UINT8", DType::kUint8, 1},
    {"UINT16", DType::kUint16, 2}, {"UINT32", DType::kUint32, 4},
    {"UINT64", DType::kUint64, 8}, {"INT8", DType::kInt8, 1},
    {"INT16", DType::kInt16, 2},   {"INT32", DType::kInt32, 4},
    {"INT64", DType::kInt64, 8},   {"FP16", DType::kFp16, 2},
    {"FP32", DType::kFp32, 4},     {"FP64", DType::kFp64, 8},
    {"BYTES", DType::kBytes, 0},   {"BF16", DType::kBf16, 2},
};

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

}  // namespace

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

}  // namespace fusion::api::v2::http_internal
