// Reads and validates a model bundle's config.pbtxt.
//
// A bundle is a directory `<repository>/<name>/<version>/` holding
// config.pbtxt, the TorchScript file and the vocabulary. This file knows
// nothing of Torch or gRPC, so it is cheap to include anywhere.
#ifndef FUSION_SERVER_RUNTIME_BUNDLE_CONFIG_H_
#define FUSION_SERVER_RUNTIME_BUNDLE_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "fusion/v1/model_config.pb.h"

namespace fusion::runtime {

// The server's flags that override every model's config.pbtxt batching
// settings; unset: the config's value.
struct BatchingOverrides {
  std::optional<int> max_batch_size;
  std::optional<int64_t> max_queue_delay_us;
  std::optional<int> max_queue_size;
  std::optional<int64_t> max_queue_wait_us;
  // Unset: the config's, measured at load where it has none. Empty: every
  // bucket up to max_batch_size (--bucket_max_batch_sizes=off).
  std::optional<std::vector<int>> bucket_max_batch_sizes;
  std::optional<int> instance_count;
  std::optional<double> merge_cost_tokens;
  std::optional<fusion::v1::BatchingConfig::Pipelining> pipelining;
};

// INVALID_ARGUMENT naming the flag (e.g. "--max_batch_size must be >= 1")
// when a set override could never be valid; checked before any load.
absl::Status ValidateOverrides(const BatchingOverrides& overrides);

// Parses `<bundle_dir>/config.pbtxt`, fills every unset field with its
// default (batching ones from batching/options.h, the rest documented in
// model_config.proto), applies `overrides` and checks the result once.
// Errors: NOT_FOUND when the file is missing, INVALID_ARGUMENT when it does
// not parse or is inconsistent (no classes, no features, bad limits...).
absl::StatusOr<fusion::v1::ModelConfig> LoadBundleConfig(
    const std::string& bundle_dir, const BatchingOverrides& overrides = {});

// Applies defaults and overrides and validates an already-parsed config
// (used by LoadBundleConfig; exposed for tests).
absl::StatusOr<fusion::v1::ModelConfig> NormalizeConfig(
    fusion::v1::ModelConfig config, const BatchingOverrides& overrides = {});

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_BUNDLE_CONFIG_H_
