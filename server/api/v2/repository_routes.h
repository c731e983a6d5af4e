// The Open Inference Protocol's model repository extension over HTTP, as
// Triton serves it:
//   POST /v2/repository/index [{"name","version","state","reason"}]
//                                              (body {"ready": true}: READY
//                                              only)
//   POST /v2/repository/models/{name}/load     ModelRegistry::LoadModel
//   POST /v2/repository/models/{name}/unload   ModelRegistry::UnloadModel
// Load and unload answer {} when done, else {"error": ...} with the status
// mapped as on the inference routes (400, 404, ...). They change what the
// server serves, so these routes go on their own address
// (--admin_http_address), never on the public HTTP port.
#ifndef FUSION_SERVER_API_V2_REPOSITORY_ROUTES_H_
#define FUSION_SERVER_API_V2_REPOSITORY_ROUTES_H_

#include "server/serving/model_registry.h"

namespace httplib {
class Server;
}

namespace fusion::api::v2 {

// `registry` must outlive `server`'s serving.
void AddRepositoryRoutes(httplib::Server& server,
                         serving::ModelRegistry* registry);

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_REPOSITORY_ROUTES_H_
