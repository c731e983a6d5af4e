#include "server/serving/version_policy.h"

#include <algorithm>

namespace fusion::serving {

std::set<int64_t> ChooseVersions(const fusion::v1::VersionPolicy& policy,
                                 const std::set<int64_t>& candidates) {
  using Policy = fusion::v1::VersionPolicy;
  switch (policy.policy_case()) {
    case Policy::kAll:
      return candidates;
    case Policy::kSpecific: {
      std::set<int64_t> chosen;
      for (int64_t version : policy.specific().versions()) {
        if (candidates.count(version)) chosen.insert(version);
      }
      return chosen;
    }
    case Policy::kLatest:
    case Policy::POLICY_NOT_SET:
      break;
  }
  const int wanted =
      policy.has_latest() ? std::max(1, policy.latest().num_versions()) : 1;
  std::set<int64_t> chosen;
  for (auto it = candidates.rbegin();
       it != candidates.rend() && static_cast<int>(chosen.size()) < wanted;
       ++it) {
    chosen.insert(*it);
  }
  return chosen;
}

}  // namespace fusion::serving
