#include "server/api/request_validation.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"
#include "server/security/request_limits.h"

namespace fusion::api {
namespace {

using fusion::v1::ScoreRequest;

absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

const char* WireTypeName(google::protobuf::UnknownField::Type type) {
  switch (type) {
    case google::protobuf::UnknownField::TYPE_VARINT:
      return "varint";
    case google::protobuf::UnknownField::TYPE_FIXED32:
      return "fixed32";
    case google::protobuf::UnknownField::TYPE_FIXED64:
      return "fixed64";
    case google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED:
      return "length-delimited";
    case google::protobuf::UnknownField::TYPE_GROUP:
      return "group";
  }
  return "unknown";
}

// CheckWireTypes for `message`, whose path from the request is `path`
// ("" for the request itself, else "inputs[0].contents." and the like).
absl::Status CheckWireTypesAt(const google::protobuf::Message& message,
                              const std::string& path) {
  const google::protobuf::Descriptor& type = *message.GetDescriptor();
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  const google::protobuf::UnknownFieldSet& unknown =
      reflection.GetUnknownFields(message);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const google::protobuf::UnknownField& field = unknown.field(i);
    const google::protobuf::FieldDescriptor* declared =
        type.FindFieldByNumber(field.number());
    if (declared == nullptr) continue;  // a newer client's field: ignored
    return Invalid(absl::StrCat(path, declared->name(), ": field ",
                                field.number(), " sent with wire type ",
                                WireTypeName(field.type()), ", declared ",
                                declared->type_name()));
  }
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    if (field->cpp_type() !=
            google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_map()) {
      continue;
    }
    if (!field->is_repeated()) {
      if (absl::Status s =
              CheckWireTypesAt(reflection.GetMessage(message, field),
                               absl::StrCat(path, field->name(), "."));
          !s.ok()) {
        return s;
      }
      continue;
    }
    for (int i = 0; i < reflection.FieldSize(message, field); ++i) {
      if (absl::Status s =
              CheckWireTypesAt(reflection.GetRepeatedMessage(message, field, i),
                               absl::StrCat(path, field->name(), "[", i, "]."));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<runtime::AttentionDetail> ToAttention(int value) {
  switch (value) {
    case fusion::v1::ATTENTION_NONE:
      return runtime::AttentionDetail::kNone;
    case fusion::v1::ATTENTION_MEAN:
      return runtime::AttentionDetail::kMean;
    case fusion::v1::ATTENTION_PER_HEAD:
      return runtime::AttentionDetail::kPerHead;
    default:
      return Invalid(absl::StrCat("attention: unknown value ", value));
  }
}

// --- Process limit (server/security/request_limits.h), checked first so an
// oversized text is never tokenized.
absl::Status CheckTextSize(const std::string& text) {
  const int64_t limit = security::MaxTextBytes();
  if (static_cast<int64_t>(text.size()) <= limit) return absl::OkStatus();
  return Invalid(absl::StrCat("text: ", text.size(),
                              " bytes exceed the server's limit of ", limit,
                              " (--max_text_bytes)"));
}
// ---

absl::Status FillTokens(const ScoreRequest& request,
                        const ModelSignature& signature,
                        ValidatedRequest& out) {
  const bool has_ids = request.token_ids_size() > 0;
  if (request.has_text() && has_ids) {
    return Invalid("text and token_ids: set exactly one, not both");
  }
  if (!request.has_text() && !has_ids) {
    return Invalid("text or token_ids: set exactly one (neither is set)");
  }
  const bool want_tokens =
      out.input.attention != runtime::AttentionDetail::kNone;
  const text::WordPieceTokenizer& tokenizer = signature.tokenizer;
  if (request.has_text()) {
    if (absl::Status s = CheckTextSize(request.text()); !s.ok()) return s;
    auto encoding = tokenizer.Encode(request.text());
    if (!encoding.ok()) {
      return Invalid(absl::StrCat("text: ", encoding.status().message()));
    }
    out.input.token_ids = std::move(encoding->ids);
    out.truncated = encoding->truncated;
    if (want_tokens) out.tokens = std::move(encoding->tokens);
    return absl::OkStatus();
  }
  const int max_tokens = signature.config.max_tokens();
  if (request.token_ids_size() > max_tokens) {
    return Invalid(absl::StrCat("token_ids: ", request.token_ids_size(),
                                " ids exceed the model's max_tokens (",
                                max_tokens, ")"));
  }
  const int32_t vocab_size = tokenizer.vocab_size();
  for (int i = 0; i < request.token_ids_size(); ++i) {
    const int32_t id = request.token_ids(i);
    if (id < 0 || id >= vocab_size) {
      return Invalid(absl::StrCat("token_ids[", i, "]: id ", id,
                                  " is outside the vocabulary [0, ", vocab_size,
                                  ")"));
    }
    if (want_tokens) out.tokens.emplace_back(*tokenizer.TokenFor(id));
  }
  out.input.token_ids.assign(request.token_ids().begin(),
                             request.token_ids().end());
  return absl::OkStatus();
}

absl::Status FillFeatureVector(const ScoreRequest& request,
                               const fusion::v1::ModelConfig& config,
                               ValidatedRequest& out) {
  if (request.feature_vector_size() != config.features_size()) {
    return Invalid(absl::StrCat(
        "feature_vector: expected ", config.features_size(),
        " values in model order, got ", request.feature_vector_size()));
  }
  for (int i = 0; i < request.feature_vector_size(); ++i) {
    if (!std::isfinite(request.feature_vector(i))) {
      return Invalid(absl::StrCat("feature_vector[", i, "] (",
                                  config.features(i).name(),
                                  "): value is not finite"));
    }
  }
  out.input.features.assign(request.feature_vector().begin(),
                            request.feature_vector().end());
  return absl::OkStatus();
}

absl::Status FillFeatureMap(const ScoreRequest& request,
                            const ModelSignature& signature,
                            ValidatedRequest& out) {
  const fusion::v1::ModelConfig& config = signature.config;
  std::vector<bool> present(config.features_size(), false);
  out.input.features.assign(config.features_size(), 0.0f);
  for (const auto& [name, value] : request.features()) {
    auto index = signature.feature_index(name);
    if (!index) {
      return Invalid(absl::StrCat("features['", QuoteClientText(name),
                                  "']: unknown feature (see GetModelMetadata "
                                  "for the model's features)"));
    }
    if (!std::isfinite(value)) {
      return Invalid(
          absl::StrCat("features['", name, "']: value is not finite"));
    }
    out.input.features[*index] = value;
    present[*index] = true;
  }
  std::vector<std::string> missing;
  for (int i = 0; i < config.features_size(); ++i) {
    if (present[i]) continue;
    const auto& spec = config.features(i);
    if (spec.allow_missing()) {
      out.input.features[i] = spec.default_value();
    } else {
      missing.push_back(spec.name());
    }
  }
  if (!missing.empty()) {
    return Invalid(absl::StrCat("features: missing required feature(s) '",
                                absl::StrJoin(missing, "', '"), "'"));
  }
  return absl::OkStatus();
}

absl::Status FillFeatures(const ScoreRequest& request,
                          const ModelSignature& signature,
                          ValidatedRequest& out) {
  const bool has_map = request.features_size() > 0;
  const bool has_vector = request.feature_vector_size() > 0;
  if (has_map && has_vector) {
    return Invalid("features and feature_vector: set exactly one, not both");
  }
  if (has_vector) return FillFeatureVector(request, signature.config, out);
  if (has_map) return FillFeatureMap(request, signature, out);
  // No values at all is fine only if every feature may be missing.
  return FillFeatureMap(request, signature, out).ok()
             ? absl::OkStatus()
             : Invalid(
                   "features or feature_vector: set exactly one "
                   "(neither is set)");
}

}  // namespace

absl::Status CheckWireTypes(const google::protobuf::Message& message) {
  return CheckWireTypesAt(message, "");
}

std::string QuoteClientText(absl::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return std::string(text);
  size_t end = kMaxQuotedBytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) to a character start.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return absl::StrCat(text.substr(0, end), "...(", text.size(), " bytes)");
}

absl::StatusOr<ValidatedRequest> ValidateScoreRequest(
    const ScoreRequest& request, const ModelSignature& signature) {
  if (absl::Status s = CheckWireTypes(request); !s.ok()) return s;
  ValidatedRequest out;
  auto attention = ToAttention(request.attention());
  if (!attention.ok()) return attention.status();
  out.input.attention = *attention;
  const int levels = signature.config.batching().priority_levels();
  if (request.priority() >= static_cast<uint32_t>(levels)) {
    return Invalid(absl::StrCat("priority: ", request.priority(),
                                " is beyond the model's ", levels,
                                " levels (0 is highest)"));
  }
  if (absl::Status s = FillTokens(request, signature, out); !s.ok()) return s;
  if (absl::Status s = FillFeatures(request, signature, out); !s.ok()) return s;
  return out;
}

}  // namespace fusion::api
