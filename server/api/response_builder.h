// Builds the API's response messages from internal results.
// Pure functions; thread-safe.
#ifndef FUSION_SERVER_API_RESPONSE_BUILDER_H_
#define FUSION_SERVER_API_RESPONSE_BUILDER_H_

#include <string>
#include <vector>

#include "fusion/v1/scoring.pb.h"
#include "server/serving/model_registry.h"
#include "server/serving/scoring_task.h"

namespace fusion::api {

// Fills `response` for a computed request. `tokens` are the request's token
// strings (used only when attention was asked); `total_us` is the time since
// the request arrived.
void FillScoreResponse(const std::string& request_id,
                       const serving::Servable& servable,
                       std::vector<std::string> tokens, bool truncated,
                       serving::ScoringResult result, int64_t total_us,
                       fusion::v1::ScoreResponse& response);

// Describes `servable`, listing every version of its model and its state.
fusion::v1::ModelMetadata BuildModelMetadata(const serving::Servable& servable,
                                             const serving::ModelStatus& model);

// The API's form of a version's state.
fusion::v1::VersionStatus ToVersionStatusProto(
    const serving::VersionStatus& status);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_RESPONSE_BUILDER_H_
