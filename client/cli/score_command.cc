// fusion-client score (one request).
#include <cstdio>
#include <iostream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/attention_table.h"
#include "client/cli/commands.h"
#include "client/connection_flags.h"
#include "client/request_json.h"

ABSL_FLAG(std::string, text, "", "Text of the request (score)");
ABSL_FLAG(std::vector<std::string>, feature, {},
          "A feature NAME=VALUE (score); repeat the flag for each feature");
ABSL_FLAG(std::string, attention, "",
          "Attention to return: none, mean or per-head (default none; mean "
          "with --show)");
ABSL_FLAG(bool, show, false,
          "Print the text->feature attention as a table and heatmap instead "
          "of JSON (score)");
ABSL_FLAG(int, top, 3, "Features listed per token with --show");
ABSL_FLAG(bool, fill_missing, false,
          "Send the training mean for required features not given (score; "
          "asks the server for the model's metadata)");
ABSL_FLAG(std::string, request_id, "cli", "request_id of the request (score)");
ABSL_FLAG(std::string, model, "", "Model name (default: the server's)");
ABSL_FLAG(std::string, model_version, "", "Model version (default: latest)");
ABSL_FLAG(int, priority, 0, "Request priority, 0 is the highest");
ABSL_DECLARE_FLAG(std::string, input);

namespace fusion::client {
namespace {

using fusion::v1::ScoreRequest;
using fusion::v1::ScoreResponse;

void PrintError(const std::string& message) {
  std::fprintf(stderr, "fusion-client: %s\n", message.c_str());
}

// Required features the request lacks get the training mean. `metadata`:
// the model's, or null to ask the server.
absl::Status FillMissing(const Client& client,
                         const fusion::v1::ModelMetadata* metadata,
                         ScoreRequest* request) {
  absl::StatusOr<fusion::v1::ModelMetadata> fetched;
  if (metadata == nullptr) {
    fetched =
        client.GetModelMetadata(request->model(), request->model_version());
    if (!fetched.ok()) return fetched.status();
    metadata = &*fetched;
  }
  std::vector<std::string> filled;
  for (const auto& spec : metadata->features()) {
    if (spec.allow_missing() || request->features().contains(spec.name())) {
      continue;
    }
    (*request->mutable_features())[spec.name()] = spec.mean();
    filled.push_back(spec.name());
  }
  if (!filled.empty()) {
    std::fprintf(stderr, "fusion-client: using the training mean for %s\n",
                 absl::StrJoin(filled, ", ").c_str());
  }
  return absl::OkStatus();
}

void PrintShow(const ScoreResponse& response) {
  std::printf(
      "request %s: score %.4f  (model %s v%s, batch of %d, %lld us "
      "in the server%s)\n\n",
      response.request_id().c_str(), response.score(), response.model().c_str(),
      response.model_version().c_str(), response.timing().batch_size(),
      static_cast<long long>(response.timing().total_us()),
      response.truncated() ? ", text truncated" : "");
  absl::StatusOr<AttentionView> view = TextToFeatureView(response.attention());
  if (!view.ok()) {
    std::printf("(%s)\n", std::string(view.status().message()).c_str());
    return;
  }
  std::printf("%s\n%s",
              RenderTopFeatures(*view, absl::GetFlag(FLAGS_top)).c_str(),
              RenderHeatmap(*view).c_str());
}

}  // namespace

int RequestFromFlags(const Client& client,
                     const std::vector<std::string>& features,
                     const fusion::v1::ModelMetadata* metadata,
                     ScoreRequest* request) {
  if (absl::GetFlag(FLAGS_text).empty() && features.empty()) {
    PrintError(
        "a request needs --text and --feature NAME=VALUE flags, or --input "
        "FILE (see --help)");
    return kExitUsage;
  }
  request->set_request_id(absl::GetFlag(FLAGS_request_id));
  request->set_text(absl::GetFlag(FLAGS_text));
  request->set_model(absl::GetFlag(FLAGS_model));
  request->set_model_version(absl::GetFlag(FLAGS_model_version));
  if (absl::GetFlag(FLAGS_priority) < 0) {
    PrintError("--priority must be >= 0");
    return kExitUsage;
  }
  request->set_priority(absl::GetFlag(FLAGS_priority));
  if (absl::Status s = AddFeatureAssignments(features, request); !s.ok()) {
    PrintError(absl::StrCat("--", s.message()));
    return kExitUsage;
  }
  const std::string attention = absl::GetFlag(FLAGS_attention);
  if (!attention.empty()) {
    auto detail = ParseAttention(attention);
    if (!detail.ok()) {
      PrintError(absl::StrCat("--", detail.status().message()));
      return kExitUsage;
    }
    request->set_attention(*detail);
  }
  if (absl::GetFlag(FLAGS_fill_missing)) {
    if (absl::Status s = FillMissing(client, metadata, request); !s.ok()) {
      PrintError(DescribeError(s, client.options()));
      return s.code() == absl::StatusCode::kUnavailable ? kExitUnreachable
                                                        : kExitRequestFailed;
    }
  }
  return kExitOk;
}

int RunScore(const Client& client, const std::vector<std::string>& features) {
  if (!absl::GetFlag(FLAGS_input).empty()) {
    if (!features.empty() || !absl::GetFlag(FLAGS_text).empty() ||
        absl::GetFlag(FLAGS_show)) {
      PrintError(
          "--input scores a file; --text, --feature and --show are "
          "for one request");
      return kExitUsage;
    }
    return RunScoreFile(client);
  }
  if (absl::GetFlag(FLAGS_text).empty() && features.empty()) {
    PrintError(
        "score needs --text and --feature NAME=VALUE flags, or --input "
        "FILE (see --help)");
    return kExitUsage;
  }
  // --show defaults to mean attention and refuses none (checked before
  // --fill_missing asks the server anything).
  if (absl::GetFlag(FLAGS_show) && !absl::GetFlag(FLAGS_attention).empty()) {
    auto detail = ParseAttention(absl::GetFlag(FLAGS_attention));
    if (detail.ok() && *detail == fusion::v1::ATTENTION_NONE) {
      PrintError("--show needs attention (--attention=mean or per-head)");
      return kExitUsage;
    }
  }
  ScoreRequest request;
  if (int code = RequestFromFlags(client, features, nullptr, &request);
      code != kExitOk) {
    return code;
  }
  if (absl::GetFlag(FLAGS_show) &&
      request.attention() == fusion::v1::ATTENTION_NONE) {
    request.set_attention(fusion::v1::ATTENTION_MEAN);
  }

  absl::StatusOr<ScoreResponse> response = client.Score(request);
  if (!response.ok()) {
    PrintError(DescribeError(response.status(), client.options()));
    return response.status().code() == absl::StatusCode::kUnavailable
               ? kExitUnreachable
               : kExitRequestFailed;
  }
  if (absl::GetFlag(FLAGS_show)) {
    PrintShow(*response);
  } else {
    std::cout << ResponseToJson(*response).dump(2) << std::endl;
  }
  return kExitOk;
}

}  // namespace fusion::client
