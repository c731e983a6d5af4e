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
#include "server/api/v2/http_json.h"
#include "server/api/v2/http_tensor_data.h"

namespace fusion::api::v2 {
namespace {

using http_internal::CheckRaw;
using http_internal::DType;
using http_internal::DTypeInfo;
using http_internal::ElementCount;
using http_internal::FindDType;
using http_internal::InferParameter;
using http_internal::InferTensorContents;
using http_internal::Invalid;
using http_internal::Json;
using http_internal::kMaxDataDepth;
using http_internal::ParameterMap;
using http_internal::ShapeString;
using http_internal::TypedToRaw;

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

}  // namespace

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

}  // namespace fusion::api::v2
