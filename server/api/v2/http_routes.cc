#include "server/api/v2/http_routes.h"

namespace fusion::api::v2 {
void AddV2Routes(httplib::Server&, const InferenceCore&, const HttpRoutesOptions&) {}
}  // namespace fusion::api::v2
