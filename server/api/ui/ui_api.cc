#include "server/api/ui/ui_api.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/api/response_builder.h"
#include "server/api/status_mapping.h"
#include "server/api/v2/http_json.h"
#include "server/serving/repository_scan.h"

namespace fusion::api::ui {
namespace {

using nlohmann::json;

// The status as the native API sends it (its gRPC code's name and message)
// with v2's HTTP status for the code.
ApiReply ErrorReply(const absl::Status& status) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  const auto code = static_cast<absl::StatusCode>(grpc_status.error_code());
  return {v2::HttpStatusFromCode(code),
          json{{"code", absl::StatusCodeToString(code)},
               {"message", grpc_status.error_message()}}
              .dump()};
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  const auto printed =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!printed.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print JSON: ", std::string(printed.message())));
  }
  return out;
}

}  // namespace

UiApi::UiApi(const serving::ServingState* state, std::string model_repository,
             UnroutedFn on_unrouted)
    : state_(state),
      model_repository_(std::move(model_repository)),
      on_unrouted_(std::move(on_unrouted)) {}

ApiReply UiApi::Models() const {
  auto registry = state_->AdmittingRegistry();
  if (!registry.ok()) return ErrorReply(registry.status());
  std::string models;
  for (const serving::ModelStatus& model : (*registry)->ListModels()) {
    for (const serving::VersionStatus& version : model.versions) {
      if (version.state != serving::VersionState::kReady) continue;
      // A version may leave between the listing and here: skip it.
      auto servable =
          (*registry)->Find(model.name, std::to_string(version.version));
      if (!servable.ok()) continue;
      auto printed = ToJson(BuildModelMetadata(**servable, model));
      if (!printed.ok()) return ErrorReply(printed.status());
      absl::StrAppend(&models, models.empty() ? "" : ",", *printed);
    }
  }
  return {200, absl::StrCat("{\"default_model\":",
                            json((*registry)->default_model()).dump(),
                            ",\"models\":[", models, "]}")};
}

ApiReply UiApi::Examples(const std::string& model,
                         const std::string& version) const {
  auto registry = state_->AdmittingRegistry();
  if (!registry.ok()) return ErrorReply(registry.status());
  auto servable = (*registry)->Find(model, version);
  if (!servable.ok()) return ErrorReply(servable.status());
  const fusion::v1::ModelConfig& config = (*servable)->config();
  std::ifstream golden(
      serving::BundleDir(model_repository_, config.name(), config.version()) +
      "/golden.jsonl");
  json examples = json::array();
  std::string line;
  while (examples.size() < static_cast<size_t>(kMaxExamples) &&
         std::getline(golden, line)) {
    const json entry = json::parse(line, nullptr, /*allow_exceptions=*/false);
    // Examples given as text and named features only (the form's inputs).
    if (!entry.is_object() || !entry.contains("text") ||
        !entry["text"].is_string() || !entry.contains("features") ||
        !entry["features"].is_object()) {
      continue;
    }
    examples.push_back({{"request_id", entry.value("request_id", "")},
                        {"text", entry["text"]},
                        {"features", entry["features"]}});
  }
  return {200, json{{"examples", std::move(examples)}}.dump()};
}

ApiReply UiApi::Score(const std::string& body) const {
  fusion::v1::ScoreRequest request;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(body, &request, options);
  if (!parsed.ok()) {
    if (on_unrouted_) on_unrouted_(absl::StatusCode::kInvalidArgument);
    return ErrorReply(absl::InvalidArgumentError(
        absl::StrCat("the body is not a ScoreRequest in JSON: ",
                     std::string(parsed.message()))));
  }
  // httplib handlers are synchronous: wait for the answer, which may come
  // on this thread (a full queue) or later from an executor.
  struct Outcome {
    absl::Notification done;
    absl::StatusOr<fusion::v1::ScoreResponse> response;
  };
  auto outcome = std::make_shared<Outcome>();
  const absl::Status submitted = SubmitScoreRequest(
      *state_, request, absl::InfiniteFuture(), [] { return false; },
      [outcome](absl::StatusOr<fusion::v1::ScoreResponse> response) {
        outcome->response = std::move(response);
        outcome->done.Notify();
      },
      on_unrouted_);
  if (!submitted.ok()) return ErrorReply(submitted);
  outcome->done.WaitForNotification();
  if (!outcome->response.ok()) return ErrorReply(outcome->response.status());
  auto printed = ToJson(*outcome->response);
  if (!printed.ok()) return ErrorReply(printed.status());
  return {200, std::move(*printed)};
}

}  // namespace fusion::api::ui
