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
#include "server/api/v2/http_tensor_data.h"

namespace fusion::api::v2 {
namespace {

using http_internal::CheckRaw;
using http_internal::DoubleJson;
using http_internal::DTypeInfo;
using http_internal::Dump;
using http_internal::ElementCount;
using http_internal::FindDType;
using http_internal::FloatJson;
using http_internal::InferParameter;
using http_internal::OrderedJson;
using http_internal::ParameterMap;
using http_internal::RawToJson;
using http_internal::ShapeString;
using http_internal::TypedToJson;
using http_internal::TypedToRaw;

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
