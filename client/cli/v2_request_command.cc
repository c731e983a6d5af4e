// fusion-client v2-request: the Open Inference Protocol (KServe v2) request
// an input becomes, printed rather than sent (client/v2_request.h).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "client/connection_flags.h"
#include "client/request_json.h"
#include "client/v2_request.h"
#include "google/protobuf/text_format.h"

ABSL_FLAG(std::string, format, "json",
          "v2-request: json (the KServe v2 REST body) or text (the gRPC "
          "ModelInferRequest in protobuf text format)");
ABSL_FLAG(bool, v2_raw, false,
          "v2-request: put the tensors in raw_input_contents (little-endian) "
          "instead of typed contents");
ABSL_FLAG(std::vector<std::string>, feature_order, {},
          "v2-request: the model's feature names in order (comma-separated), "
          "instead of asking the server for its metadata");
ABSL_DECLARE_FLAG(std::string, text);
ABSL_DECLARE_FLAG(std::string, input);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(std::string, attention);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, model_version);
ABSL_DECLARE_FLAG(bool, fill_missing);
ABSL_DECLARE_FLAG(bool, show);

namespace fusion::client {
namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "fusion-client: %s\n", message.c_str());
  return kExitUsage;
}

// The request as JSON or text, on one line or indented.
absl::StatusOr<std::string> Render(const inference::ModelInferRequest& request,
                                   bool as_json, bool one_line) {
  if (as_json) {
    absl::StatusOr<nlohmann::ordered_json> body = V2RequestToJson(request);
    if (!body.ok()) return body.status();
    return body->dump(one_line ? -1 : 2, ' ', false,
                      nlohmann::ordered_json::error_handler_t::replace);
  }
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(one_line);
  printer.PrintToString(request, &text);
  if (one_line) text = std::string(absl::StripTrailingAsciiWhitespace(text));
  return text;
}

// --input: one request per line in, one v2 request per line out.
int ConvertFile(const V2ModelInfo& model, const V2Options& options,
                bool as_json) {
  const std::string input = absl::GetFlag(FLAGS_input);
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (input != "-") {
    in_file.open(input);
    if (!in_file) return Usage(absl::StrCat("cannot read ", input));
    in = &in_file;
  }
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  const std::string output = absl::GetFlag(FLAGS_output);
  if (!output.empty() && output != "-") {
    out_file.open(output, std::ios::trunc);
    if (!out_file) return Usage(absl::StrCat("cannot write ", output));
    out = &out_file;
  }
  bool attention_set = false;
  fusion::v1::AttentionDetail attention = fusion::v1::ATTENTION_NONE;
  if (!absl::GetFlag(FLAGS_attention).empty()) {
    auto detail = ParseAttention(absl::GetFlag(FLAGS_attention));
    if (!detail.ok())
      return Usage(absl::StrCat("--", detail.status().message()));
    attention_set = true;
    attention = *detail;
  }
  std::string line;
  for (int n = 1; std::getline(*in, line); ++n) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<fusion::v1::ScoreRequest> request = ParseRequestLine(line);
    absl::StatusOr<std::string> rendered;
    if (!request.ok()) {
      rendered = request.status();
    } else {
      if (attention_set) request->set_attention(attention);
      if (!absl::GetFlag(FLAGS_model).empty()) {
        request->set_model(absl::GetFlag(FLAGS_model));
      }
      if (!absl::GetFlag(FLAGS_model_version).empty()) {
        request->set_model_version(absl::GetFlag(FLAGS_model_version));
      }
      absl::StatusOr<inference::ModelInferRequest> v2 =
          ToV2Request(*request, model, options);
      rendered = v2.ok() ? Render(*v2, as_json, /*one_line=*/true)
                         : absl::StatusOr<std::string>(v2.status());
    }
    if (!rendered.ok()) {
      return Usage(absl::StrCat(input == "-" ? "stdin" : input, ":", n, ": ",
                                rendered.status().message()));
    }
    *out << *rendered << '\n';
  }
  out->flush();
  if (!*out) {
    std::fprintf(stderr, "fusion-client: writing the requests failed\n");
    return kExitRequestFailed;
  }
  return kExitOk;
}

}  // namespace

int RunV2Request(const Client& client,
                 const std::vector<std::string>& features) {
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "json" && format != "text") {
    return Usage("--format must be json or text");
  }
  const bool as_json = format == "json";
  const bool file = !absl::GetFlag(FLAGS_input).empty();
  if (absl::GetFlag(FLAGS_show)) return Usage("--show is for score");
  if (file && (!features.empty() || !absl::GetFlag(FLAGS_text).empty() ||
               absl::GetFlag(FLAGS_fill_missing))) {
    return Usage(
        "--input converts a file; --text, --feature and --fill_missing are "
        "for one request");
  }
  if (!file && absl::GetFlag(FLAGS_text).empty() && features.empty()) {
    return Usage(
        "v2-request needs --text and --feature NAME=VALUE flags, or --input "
        "FILE (see --help)");
  }

  // The feature order of FEATURES: given, or the server's metadata.
  V2ModelInfo model;
  fusion::v1::ModelMetadata metadata;
  bool have_metadata = false;
  const std::vector<std::string> order = absl::GetFlag(FLAGS_feature_order);
  if (!order.empty()) {
    if (absl::GetFlag(FLAGS_fill_missing)) {
      return Usage(
          "--fill_missing needs the model's metadata from the server; leave "
          "out --feature_order");
    }
    model = V2ModelInfoFromNames(absl::GetFlag(FLAGS_model), order);
  } else {
    absl::StatusOr<fusion::v1::ModelMetadata> fetched = client.GetModelMetadata(
        absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_model_version));
    if (!fetched.ok()) {
      std::fprintf(
          stderr,
          "fusion-client: %s (the feature order comes from the model's "
          "metadata; --feature_order NAME,... gives it without a server)\n",
          DescribeError(fetched.status(), client.options()).c_str());
      return fetched.status().code() == absl::StatusCode::kUnavailable
                 ? kExitUnreachable
                 : kExitRequestFailed;
    }
    metadata = *std::move(fetched);
    have_metadata = true;
    model = V2ModelInfoFromMetadata(metadata);
  }
  V2Options options;
  options.raw = absl::GetFlag(FLAGS_v2_raw);
  if (file) return ConvertFile(model, options, as_json);

  fusion::v1::ScoreRequest request;
  if (int code = RequestFromFlags(
          client, features, have_metadata ? &metadata : nullptr, &request);
      code != kExitOk) {
    return code;
  }
  absl::StatusOr<inference::ModelInferRequest> v2 =
      ToV2Request(request, model, options);
  if (!v2.ok()) return Usage(std::string(v2.status().message()));
  absl::StatusOr<std::string> rendered =
      Render(*v2, as_json, /*one_line=*/false);
  if (!rendered.ok()) return Usage(std::string(rendered.status().message()));
  if (v2->model_name().empty()) {
    std::fprintf(stderr,
                 "fusion-client: not sent; the request names no model (give "
                 "--model)\n");
  } else {
    std::fprintf(stderr,
                 "fusion-client: not sent; gRPC "
                 "inference.GRPCInferenceService/ModelInfer, REST POST %s\n",
                 V2InferPath(*v2).c_str());
  }
  std::cout << *rendered;
  if (as_json) std::cout << '\n';
  std::cout.flush();
  return kExitOk;
}

}  // namespace fusion::client
