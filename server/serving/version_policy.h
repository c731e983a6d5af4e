// Which versions of a model to keep loaded (model_config.proto
// VersionPolicy), as a pure function so that it is tested alone.
#ifndef FUSION_SERVER_SERVING_VERSION_POLICY_H_
#define FUSION_SERVER_SERVING_VERSION_POLICY_H_

#include <cstdint>
#include <set>

#include "fusion/v1/model_config.pb.h"

namespace fusion::serving {

// The versions `policy` picks among `candidates` (the versions that serve
// now or can be loaded now). latest N: the N highest; all: every one;
// specific: those listed that are candidates. Unset: latest 1.
std::set<int64_t> ChooseVersions(const fusion::v1::VersionPolicy& policy,
                                 const std::set<int64_t>& candidates);

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_VERSION_POLICY_H_
