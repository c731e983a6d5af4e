// The page's files (assets/), compiled into the binary by embed_assets.cmake
// (the generated embedded_assets.cc).
#ifndef FUSION_SERVER_API_UI_EMBEDDED_ASSETS_H_
#define FUSION_SERVER_API_UI_EMBEDDED_ASSETS_H_

#include <string_view>
#include <vector>

namespace fusion::api::ui {

struct EmbeddedAsset {
  std::string_view path;          // relative to assets/, e.g. "app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
};

const std::vector<EmbeddedAsset>& EmbeddedAssets();

}  // namespace fusion::api::ui

#endif  // FUSION_SERVER_API_UI_EMBEDDED_ASSETS_H_
