#include "client/request_json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace fusion::client {

double Tidy(float value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  double shortest = std::strtod(buffer, nullptr);
  for (int digits = 6; digits < 9; ++digits) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
    double candidate = std::strtod(buffer, nullptr);
    if (static_cast<float>(candidate) == value) return candidate;
  }
  return shortest;
}

namespace {

using fusion::v1::ScoreRequest;
using nlohmann::json;

absl::Status Invalid(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", what));
}

absl::StatusOr<float> FiniteFloat(const json& value, absl::string_view key) {
  if (!value.is_number()) return Invalid(key, "expected a number");
  const double number = value.get<double>();
  if (!std::isfinite(number) || std::fabs(number) > 3.4e38) {
    return Invalid(key, "number is not a finite float");
  }
  return static_cast<float>(number);
}

absl::Status ReadTokenIds(const json& value, ScoreRequest* request) {
  if (!value.is_array()) return Invalid("token_ids", "expected an array");
  for (size_t i = 0; i < value.size(); ++i) {
    const json& id = value[i];
    if (!id.is_number_integer() || id.get<int64_t>() < INT32_MIN ||
        id.get<int64_t>() > INT32_MAX) {
      return Invalid(absl::StrCat("token_ids[", i, "]"),
                     "expected a 32-bit integer");
    }
    request->add_token_ids(id.get<int32_t>());
  }
  return absl::OkStatus();
}

absl::Status ReadFeatures(const json& value, ScoreRequest* request) {
  if (!value.is_object()) {
    return Invalid("features", "expected an object of name: number");
  }
  for (const auto& [name, number] : value.items()) {
    absl::StatusOr<float> f =
        FiniteFloat(number, absl::StrCat("features['", name, "']"));
    if (!f.ok()) return f.status();
    (*request->mutable_features())[name] = *f;
  }
  return absl::OkStatus();
}

absl::Status ReadFeatureVector(const json& value, ScoreRequest* request) {
  if (!value.is_array()) {
    return Invalid("feature_vector", "expected an array of numbers");
  }
  for (size_t i = 0; i < value.size(); ++i) {
    absl::StatusOr<float> f =
        FiniteFloat(value[i], absl::StrCat("feature_vector[", i, "]"));
    if (!f.ok()) return f.status();
    request->add_feature_vector(*f);
  }
  return absl::OkStatus();
}

absl::Status ReadString(const json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return Invalid(key, "expected a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadScalars(const json& object, ScoreRequest* request) {
  if (auto it = object.find("request_id"); it != object.end()) {
    if (it->is_string()) {
      request->set_request_id(it->get<std::string>());
    } else if (it->is_number_integer()) {
      request->set_request_id(absl::StrCat(it->get<int64_t>()));
    } else if (!it->is_null()) {
      return Invalid("request_id", "expected a string or an integer");
    }
  }
  if (absl::Status s = ReadString(object, "model", request->mutable_model());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ReadString(object, "model_version", request->mutable_model_version());
      !s.ok()) {
    return s;
  }
  if (auto it = object.find("attention"); it != object.end()) {
    if (it->is_string()) {
      auto detail = ParseAttention(it->get<std::string>());
      if (!detail.ok()) return Invalid("attention", detail.status().message());
      request->set_attention(*detail);
    } else if (it->is_number_integer() && it->get<int64_t>() >= 0 &&
               it->get<int64_t>() <= 2) {
      request->set_attention(
          static_cast<fusion::v1::AttentionDetail>(it->get<int>()));
    } else if (!it->is_null()) {
      return Invalid("attention", "expected none, mean or per-head");
    }
  }
  if (auto it = object.find("priority"); it != object.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() > UINT32_MAX) {
      return Invalid("priority", "expected an integer >= 0");
    }
    request->set_priority(it->get<uint32_t>());
  }
  return absl::OkStatus();
}

// `values` (row-major) nested by `shape`; flat when the shape does not fit.
json Nest(const google::protobuf::RepeatedField<float>& values,
          const google::protobuf::RepeatedField<int32_t>& shape) {
  size_t expected = shape.empty() ? 0 : 1;
  for (int32_t dim : shape) expected *= dim > 0 ? dim : 0;
  if (expected != static_cast<size_t>(values.size()) || expected == 0) {
    json flat = json::array();
    for (float v : values) flat.push_back(Tidy(v));
    return flat;
  }
  // Build from the innermost dimension outwards.
  std::vector<json> level;
  level.reserve(values.size());
  for (float v : values) level.push_back(Tidy(v));
  for (int d = shape.size() - 1; d >= 1; --d) {
    std::vector<json> outer;
    const size_t width = shape[d];
    for (size_t start = 0; start < level.size(); start += width) {
      json row = json::array();
      for (size_t i = start; i < start + width; ++i) {
        row.push_back(std::move(level[i]));
      }
      outer.push_back(std::move(row));
    }
    level = std::move(outer);
  }
  json nested = json::array();
  for (json& row : level) nested.push_back(std::move(row));
  return nested;
}

}  // namespace

absl::StatusOr<fusion::v1::AttentionDetail> ParseAttention(
    absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "none") return fusion::v1::ATTENTION_NONE;
  if (lower == "mean") return fusion::v1::ATTENTION_MEAN;
  if (lower == "per-head" || lower == "per_head") {
    return fusion::v1::ATTENTION_PER_HEAD;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("attention '", text, "': expected none, mean or per-head"));
}

const char* AttentionName(fusion::v1::AttentionDetail detail) {
  switch (detail) {
    case fusion::v1::ATTENTION_MEAN:
      return "mean";
    case fusion::v1::ATTENTION_PER_HEAD:
      return "per-head";
    default:
      return "none";
  }
}

absl::StatusOr<std::pair<std::string, float>> ParseFeatureAssignment(
    absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature '", text, "': expected NAME=VALUE"));
  }
  absl::string_view name = absl::StripAsciiWhitespace(text.substr(0, eq));
  absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature '", text, "': the name before '=' is empty"));
  }
  float number;
  if (value.empty() || !absl::SimpleAtof(value, &number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature '", text, "': '", value, "' is not a number"));
  }
  if (!std::isfinite(number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature '", text, "': the value is not finite"));
  }
  return std::make_pair(std::string(name), number);
}

absl::Status AddFeatureAssignments(const std::vector<std::string>& assignments,
                                   fusion::v1::ScoreRequest* request) {
  for (const std::string& assignment : assignments) {
    auto parsed = ParseFeatureAssignment(assignment);
    if (!parsed.ok()) return parsed.status();
    auto [it, inserted] =
        request->mutable_features()->insert({parsed->first, parsed->second});
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature '", parsed->first, "' is given twice"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<fusion::v1::ScoreRequest> RequestFromJson(const json& object) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError("expected a JSON object");
  }
  ScoreRequest request;
  if (absl::Status s = ReadScalars(object, &request); !s.ok()) return s;

  auto text = object.find("text");
  if (text != object.end() && !text->is_null()) {
    if (!text->is_string()) return Invalid("text", "expected a string");
    request.set_text(text->get<std::string>());
  } else if (auto ids = object.find("token_ids"); ids != object.end()) {
    if (absl::Status s = ReadTokenIds(*ids, &request); !s.ok()) return s;
  }

  auto features = object.find("features");
  if (features != object.end() && !features->is_null()) {
    if (absl::Status s = ReadFeatures(*features, &request); !s.ok()) return s;
  } else if (auto vec = object.find("feature_vector"); vec != object.end()) {
    if (absl::Status s = ReadFeatureVector(*vec, &request); !s.ok()) return s;
  }
  return request;
}

absl::StatusOr<fusion::v1::ScoreRequest> ParseRequestLine(
    absl::string_view line) {
  json parsed = json::parse(line.begin(), line.end(), nullptr,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError("not valid JSON");
  }
  return RequestFromJson(parsed);
}

json ResponseToJson(const fusion::v1::ScoreResponse& response) {
  json out;
  out["request_id"] = response.request_id();
  out["model"] = response.model();
  out["model_version"] = response.model_version();
  out["score"] = Tidy(response.score());
  json probabilities = json::array();
  for (float p : response.probabilities()) probabilities.push_back(Tidy(p));
  out["probabilities"] = std::move(probabilities);
  out["truncated"] = response.truncated();
  const fusion::v1::Timing& timing = response.timing();
  out["timing"] = {{"queue_us", timing.queue_us()},
                   {"compute_us", timing.compute_us()},
                   {"batch_size", timing.batch_size()},
                   {"total_us", timing.total_us()}};
  if (response.has_attention()) {
    const fusion::v1::Attention& a = response.attention();
    out["attention"] = {
        {"tokens",
         std::vector<std::string>(a.tokens().begin(), a.tokens().end())},
        {"feature_names", std::vector<std::string>(a.feature_names().begin(),
                                                   a.feature_names().end())},
        {"text_to_features",
         Nest(a.text_to_features(), a.text_to_features_shape())},
        {"text_to_features_shape",
         std::vector<int>(a.text_to_features_shape().begin(),
                          a.text_to_features_shape().end())},
        {"features_to_text",
         Nest(a.features_to_text(), a.features_to_text_shape())},
        {"features_to_text_shape",
         std::vector<int>(a.features_to_text_shape().begin(),
                          a.features_to_text_shape().end())}};
  }
  return out;
}

json ErrorToJson(const std::string& request_id, const absl::Status& status) {
  return {{"request_id", request_id},
          {"error",
           {{"code", absl::StatusCodeToString(status.code())},
            {"code_number", static_cast<int>(status.code())},
            {"message", std::string(status.message())}}}};
}

json MetadataToJson(const fusion::v1::ModelMetadata& metadata) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(metadata, &text, options)
           .ok()) {
    return json::object();
  }
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace fusion::client
