#include "server/api/v2/repository_routes.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "server/api/v2/http_json.h"
#include "server/common/log.h"

namespace fusion::api::v2 {
namespace {

using nlohmann::json;

void Reply(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusFromCode(status.code());
  res.set_content(status.ok() ? "{}" : ErrorToJson(status.message()),
                  "application/json");
}

// A body is optional; when present it must be a JSON object.
absl::StatusOr<json> ParseBody(const std::string& body) {
  if (body.empty()) return json::object();
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError("body: expected a JSON object");
  }
  return parsed;
}

}  // namespace

void AddRepositoryRoutes(httplib::Server& server,
                         serving::ModelRegistry* registry) {
  server.Post("/v2/repository/index", [registry](const httplib::Request& req,
                                                 httplib::Response& res) {
    auto body = ParseBody(req.body);
    if (!body.ok()) return Reply(res, body.status());
    const json ready = body->value("ready", json(false));
    if (!ready.is_boolean()) {
      return Reply(res, absl::InvalidArgumentError("ready: expected a bool"));
    }
    json index = json::array();
    for (const serving::ModelStatus& model : registry->ListModels()) {
      for (const serving::VersionStatus& v : model.versions) {
        if (ready.get<bool>() && v.state != serving::VersionState::kReady) {
          continue;
        }
        index.push_back({{"name", model.name},
                         {"version", std::to_string(v.version)},
                         {"state", serving::VersionStateName(v.state)},
                         {"reason", v.reason}});
      }
    }
    res.set_content(index.dump(), "application/json");
  });
  server.Post(R"(/v2/repository/models/([^/]+)/(load|unload))",
              [registry](const httplib::Request& req, httplib::Response& res) {
                auto body = ParseBody(req.body);
                if (!body.ok()) return Reply(res, body.status());
                if (body->contains("parameters")) {
                  return Reply(res, absl::InvalidArgumentError(
                                        "parameters: not supported (the "
                                        "repository's config.pbtxt applies)"));
                }
                const std::string name = req.matches[1];
                const bool load = req.matches[2] == "load";
                Log(LogLevel::kInfo,
                    "admin (HTTP): ", load ? "load " : "unload ", name);
                Reply(res, load ? registry->LoadModel(name)
                                : registry->UnloadModel(name, ""));
              });
}

}  // namespace fusion::api::v2
