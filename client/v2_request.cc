#include "client/v2_request.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/request_json.h"
#include "google/protobuf/text_format.h"

namespace fusion::client {
namespace {

using inference::ModelInferRequest;
using json = nlohmann::ordered_json;
using Tensor = inference::ModelInferRequest::InferInputTensor;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

void PutLe(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) {
    out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return value;
}

uint32_t FloatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

float BitsFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// The tensor's typed contents as raw bytes; clears the contents.
std::string TakeRaw(Tensor* tensor) {
  inference::InferTensorContents* c = tensor->mutable_contents();
  std::string raw;
  if (tensor->datatype() == "BYTES") {
    raw = EncodeRawBytes(
        {c->bytes_contents().begin(), c->bytes_contents().end()});
  } else if (tensor->datatype() == "INT64") {
    raw = EncodeRawInt64(
        {c->int64_contents().begin(), c->int64_contents().end()});
  } else if (tensor->datatype() == "FP32") {
    raw = EncodeRawFp32({c->fp32_contents().begin(), c->fp32_contents().end()});
  }
  tensor->clear_contents();
  return raw;
}

void AddOutput(ModelInferRequest* r, const char* name, bool per_head) {
  auto* out = r->add_outputs();
  out->set_name(name);
  if (per_head) {
    (*out->mutable_parameters())["attention"].set_string_param("per_head");
  }
}

json ParameterJson(const inference::InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam:
      return p.bool_param();
    case inference::InferParameter::kInt64Param:
      return p.int64_param();
    case inference::InferParameter::kStringParam:
      return p.string_param();
    case inference::InferParameter::kDoubleParam:
      return p.double_param();
    case inference::InferParameter::kUint64Param:
      return p.uint64_param();
    default:
      return nullptr;
  }
}

template <typename Map>
json ParametersJson(const Map& parameters) {
  // Sorted by name, so the output is stable.
  std::map<std::string, const inference::InferParameter*> sorted;
  for (const auto& [key, value] : parameters) sorted[key] = &value;
  json out = json::object();
  for (const auto& [key, value] : sorted) out[key] = ParameterJson(*value);
  return out;
}

absl::StatusOr<json> RawToData(const Tensor& tensor, const std::string& raw,
                               int64_t elements) {
  json data = json::array();
  const std::string& type = tensor.datatype();
  auto bad = [&](absl::string_view why) {
    return Invalid(
        absl::StrCat("raw_input_contents of ", tensor.name(), ": ", why));
  };
  if (type == "BYTES") {
    size_t at = 0;
    while (at < raw.size()) {
      if (raw.size() - at < 4) return bad("truncated length");
      const uint64_t n = GetLe(raw.data() + at, 4);
      at += 4;
      if (raw.size() - at < n) return bad("truncated element");
      data.push_back(raw.substr(at, n));
      at += n;
    }
  } else {
    int width = 0;
    if (type == "INT64") width = 8;
    if (type == "INT32" || type == "FP32") width = 4;
    if (width == 0) return bad(absl::StrCat("unsupported datatype ", type));
    if (raw.size() % width != 0) return bad("size is not a whole element");
    for (size_t at = 0; at < raw.size(); at += width) {
      const uint64_t v = GetLe(raw.data() + at, width);
      if (type == "INT64") {
        data.push_back(static_cast<int64_t>(v));
      } else if (type == "INT32") {
        data.push_back(static_cast<int32_t>(static_cast<uint32_t>(v)));
      } else {
        data.push_back(Tidy(BitsFloat(static_cast<uint32_t>(v))));
      }
    }
  }
  if (static_cast<int64_t>(data.size()) != elements) {
    return bad(
        absl::StrCat(data.size(), " elements for a shape of ", elements));
  }
  return data;
}

json TypedToData(const Tensor& tensor) {
  const inference::InferTensorContents& c = tensor.contents();
  json data = json::array();
  for (const std::string& s : c.bytes_contents()) data.push_back(s);
  for (int64_t v : c.int64_contents()) data.push_back(v);
  for (int32_t v : c.int_contents()) data.push_back(v);
  for (uint64_t v : c.uint64_contents()) data.push_back(v);
  for (uint32_t v : c.uint_contents()) data.push_back(v);
  for (float v : c.fp32_contents()) data.push_back(Tidy(v));
  for (double v : c.fp64_contents()) data.push_back(v);
  for (bool v : c.bool_contents()) data.push_back(v);
  return data;
}

}  // namespace

V2ModelInfo V2ModelInfoFromMetadata(const fusion::v1::ModelMetadata& metadata) {
  V2ModelInfo info;
  info.name = metadata.name();
  for (const auto& f : metadata.features()) {
    info.features.push_back({f.name(), f.allow_missing(), f.default_value()});
  }
  return info;
}

V2ModelInfo V2ModelInfoFromNames(const std::string& model_name,
                                 const std::vector<std::string>& names) {
  V2ModelInfo info;
  info.name = model_name;
  for (const std::string& name : names) info.features.push_back({name});
  return info;
}

std::string EncodeRawBytes(const std::vector<std::string>& elements) {
  std::string out;
  for (const std::string& e : elements) {
    PutLe(e.size(), 4, &out);
    out += e;
  }
  return out;
}

std::string EncodeRawInt64(const std::vector<int64_t>& values) {
  std::string out;
  out.reserve(values.size() * 8);
  for (int64_t v : values) PutLe(static_cast<uint64_t>(v), 8, &out);
  return out;
}

std::string EncodeRawFp32(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 4);
  for (float v : values) PutLe(FloatBits(v), 4, &out);
  return out;
}

absl::StatusOr<ModelInferRequest> ToV2Request(
    const fusion::v1::ScoreRequest& request, const V2ModelInfo& model,
    const V2Options& options) {
  ModelInferRequest r;
  r.set_model_name(request.model().empty() ? model.name : request.model());
  r.set_model_version(request.model_version());
  r.set_id(request.request_id());

  if (request.has_text()) {
    Tensor* t = r.add_inputs();
    t->set_name(kV2Text);
    t->set_datatype("BYTES");
    t->add_shape(1);
    t->mutable_contents()->add_bytes_contents(request.text());
  } else if (request.token_ids_size() > 0) {
    Tensor* t = r.add_inputs();
    t->set_name(kV2InputIds);
    t->set_datatype("INT64");
    t->add_shape(1);
    t->add_shape(request.token_ids_size());
    auto* ids = t->mutable_contents()->mutable_int64_contents();
    ids->Reserve(request.token_ids_size());
    for (int32_t id : request.token_ids()) ids->Add(id);
  } else {
    return Invalid("the request has neither text nor token_ids");
  }

  std::vector<float> features;
  const int model_features = static_cast<int>(model.features.size());
  if (!request.features().empty() || request.feature_vector().empty()) {
    std::unordered_set<std::string> known;
    for (const auto& f : model.features) known.insert(f.name);
    for (const auto& [name, value] : request.features()) {
      if (known.count(name) == 0) {
        return Invalid(model.features.empty()
                           ? absl::StrCat("feature '", name,
                                          "': the model's feature order is "
                                          "unknown")
                           : absl::StrCat("unknown feature '", name, "'"));
      }
    }
    for (const auto& f : model.features) {
      auto it = request.features().find(f.name);
      if (it != request.features().end()) {
        features.push_back(it->second);
      } else if (f.allow_missing) {
        features.push_back(f.default_value);
      } else {
        return Invalid(absl::StrCat(
            "feature '", f.name,
            "' is missing (the v2 FEATURES tensor is dense: give every "
            "required feature)"));
      }
    }
  } else {
    if (model_features > 0 && request.feature_vector_size() != model_features) {
      return Invalid(
          absl::StrCat("feature_vector has ", request.feature_vector_size(),
                       " values; the model has ", model_features, " features"));
    }
    features.assign(request.feature_vector().begin(),
                    request.feature_vector().end());
  }
  if (!features.empty()) {
    Tensor* t = r.add_inputs();
    t->set_name(kV2Features);
    t->set_datatype("FP32");
    t->add_shape(1);
    t->add_shape(static_cast<int64_t>(features.size()));
    t->mutable_contents()->mutable_fp32_contents()->Add(features.begin(),
                                                        features.end());
  }

  if (request.attention() != fusion::v1::ATTENTION_NONE) {
    const bool per_head = request.attention() == fusion::v1::ATTENTION_PER_HEAD;
    AddOutput(&r, kV2Probabilities, false);
    AddOutput(&r, kV2Score, false);
    AddOutput(&r, kV2TextToFeatures, per_head);
    AddOutput(&r, kV2FeaturesToText, per_head);
    AddOutput(&r, kV2TokenCount, false);
  }
  if (request.priority() > 0) {
    (*r.mutable_parameters())["priority"].set_int64_param(
        static_cast<int64_t>(request.priority()) + 1);
  }
  if (options.raw) {
    for (Tensor& t : *r.mutable_inputs()) r.add_raw_input_contents(TakeRaw(&t));
  }
  return r;
}

absl::StatusOr<json> V2RequestToJson(const ModelInferRequest& request) {
  json out = json::object();
  if (!request.id().empty()) out["id"] = request.id();
  if (!request.parameters().empty()) {
    out["parameters"] = ParametersJson(request.parameters());
  }
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return Invalid(absl::StrCat(request.raw_input_contents_size(),
                                " raw_input_contents for ",
                                request.inputs_size(), " inputs"));
  }
  json inputs = json::array();
  for (int i = 0; i < request.inputs_size(); ++i) {
    const Tensor& t = request.inputs(i);
    int64_t elements = 1;
    json shape = json::array();
    for (int64_t d : t.shape()) {
      shape.push_back(d);
      elements *= d;
    }
    json tensor = {
        {"name", t.name()}, {"datatype", t.datatype()}, {"shape", shape}};
    if (!t.parameters().empty()) {
      tensor["parameters"] = ParametersJson(t.parameters());
    }
    if (raw) {
      absl::StatusOr<json> data =
          RawToData(t, request.raw_input_contents(i), elements);
      if (!data.ok()) return data.status();
      tensor["data"] = *std::move(data);
    } else {
      tensor["data"] = TypedToData(t);
    }
    inputs.push_back(std::move(tensor));
  }
  out["inputs"] = std::move(inputs);
  if (request.outputs_size() > 0) {
    json outputs = json::array();
    for (const auto& o : request.outputs()) {
      json output = {{"name", o.name()}};
      if (!o.parameters().empty()) {
        output["parameters"] = ParametersJson(o.parameters());
      }
      outputs.push_back(std::move(output));
    }
    out["outputs"] = std::move(outputs);
  }
  return out;
}

std::string V2InferPath(const ModelInferRequest& request) {
  std::string path = absl::StrCat("/v2/models/", request.model_name());
  if (!request.model_version().empty()) {
    absl::StrAppend(&path, "/versions/", request.model_version());
  }
  return absl::StrCat(path, "/infer");
}

std::string V2RequestToText(const ModelInferRequest& request) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(request, &text);
  return text;
}

absl::StatusCode V2StreamErrorCode(absl::string_view message) {
  message = absl::StripLeadingAsciiWhitespace(message);
  absl::ConsumePrefix(&message, "[StatusCode.");
  size_t n = 0;
  while (n < message.size() &&
         (absl::ascii_isupper(message[n]) || message[n] == '_')) {
    ++n;
  }
  const absl::string_view name = message.substr(0, n);
  if (n < message.size() && message[n] != ':' && message[n] != ']' &&
      message[n] != ' ') {
    return absl::StatusCode::kUnknown;
  }
  for (int code = 1; code <= 16; ++code) {
    const auto c = static_cast<absl::StatusCode>(code);
    if (!name.empty() && name == absl::StatusCodeToString(c)) return c;
  }
  return absl::StatusCode::kUnknown;
}

}  // namespace fusion::client
