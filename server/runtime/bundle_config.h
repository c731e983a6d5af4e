// Reads and validates a model bundle's config.pbtxt.
//
// A bundle is a directory `<repository>/<name>/<version>/` holding
// config.pbtxt, the TorchScript file and the vocabulary. This file knows
// nothing of Torch or gRPC, so it is cheap to include anywhere.
#ifndef FUSION_SERVER_RUNTIME_BUNDLE_CONFIG_H_
#define FUSION_SERVER_RUNTIME_BUNDLE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "fusion/v1/model_config.pb.h"

namespace fusion::runtime {

// Parses `<bundle_dir>/config.pbtxt`, fills every zero field with its
// documented default (see model_config.proto) and checks the result.
// Errors: NOT_FOUND when the file is missing, INVALID_ARGUMENT when it does
// not parse or is inconsistent (no classes, no features, bad limits...).
absl::StatusOr<fusion::v1::ModelConfig> LoadBundleConfig(
    const std::string& bundle_dir);

// Applies defaults and validates an already-parsed config (used by
// LoadBundleConfig; exposed for tests).
absl::StatusOr<fusion::v1::ModelConfig> NormalizeConfig(
    fusion::v1::ModelConfig config);

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_BUNDLE_CONFIG_H_
