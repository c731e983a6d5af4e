#include "server/api/ui/ui_routes.h"

#include <httplib.h>

#include <memory>
#include <string>
#include <utility>

#include "server/api/ui/embedded_assets.h"
#include "server/api/ui/ui_api.h"

namespace fusion::api::ui {
namespace {

void SetCommonHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-cache");
}

void Reply(httplib::Response& res, const ApiReply& reply) {
  SetCommonHeaders(res);
  res.status = reply.http_status;
  res.set_content(reply.body, "application/json");
}

void ServeAsset(httplib::Server& server, const std::string& route,
                const EmbeddedAsset& asset) {
  server.Get(route, [&asset](const httplib::Request&, httplib::Response& res) {
    SetCommonHeaders(res);
    res.set_content(std::string(asset.body), std::string(asset.content_type));
  });
}

}  // namespace

void AddUiRoutes(httplib::Server& server, UiOptions options) {
  for (const EmbeddedAsset& asset : EmbeddedAssets()) {
    const std::string path(asset.path);
    if (path == "index.html") {
      ServeAsset(server, "/", asset);
      ServeAsset(server, "/index.html", asset);
    } else {
      ServeAsset(server, "/ui/" + path, asset);
    }
  }
  auto api = std::make_shared<const UiApi>(options.state,
                                           std::move(options.model_repository),
                                           std::move(options.on_unrouted));
  server.Get("/ui/api/models",
             [api](const httplib::Request&, httplib::Response& res) {
               Reply(res, api->Models());
             });
  server.Get("/ui/api/examples",
             [api](const httplib::Request& req, httplib::Response& res) {
               Reply(res, api->Examples(req.get_param_value("model"),
                                        req.get_param_value("version")));
             });
  server.Post("/ui/api/score",
              [api](const httplib::Request& req, httplib::Response& res) {
                Reply(res, api->Score(req.body));
              });
}

}  // namespace fusion::api::ui
