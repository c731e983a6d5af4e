// Loads every model bundle of a repository laid out as
// `<repository>/<model name>/<numeric version>/config.pbtxt` and finds the
// servable a request names.
//
// The runtime is created through a factory so that this file (and its
// tests) never depend on Torch. Thread-safety: immutable after Load, except
// DrainAll, which may run while Find is called.
#ifndef FUSION_SERVER_SERVING_MODEL_REGISTRY_H_
#define FUSION_SERVER_SERVING_MODEL_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fusion/v1/model_config.pb.h"
#include "server/runtime/model_runtime.h"
#include "server/serving/servable.h"

namespace fusion::serving {

using RuntimeFactory =
    std::function<absl::StatusOr<std::unique_ptr<runtime::ModelRuntime>>(
        const std::string& bundle_dir, const fusion::v1::ModelConfig& config)>;

// Flag overrides of config.pbtxt; zero keeps the config's value.
struct BatchingOverrides {
  int max_batch_size = 0;
  int64_t max_queue_delay_us = -1;  // -1 keeps; 0 is a valid setting
  int max_queue_size = 0;
  int instance_count = 0;
  double merge_cost_tokens = -1;  // -1 keeps; 0 never merges
  std::optional<fusion::v1::BatchingConfig::Pipelining> pipelining;
};

// The observer for one model version (not owned; outlives the registry).
using ObserverFactory = std::function<ServingObserver*(
    const std::string& model, const std::string& version)>;

struct RegistryOptions {
  std::string repository = "models";
  std::string default_model;  // must be in the repository
  BatchingOverrides overrides;
  RuntimeFactory runtime_factory;
  ObserverFactory observer_factory;  // optional
  // Called after each version is loaded and warmed up (optional).
  std::function<void(const Servable&, absl::Duration load_time)> on_loaded;
};

class ModelRegistry {
 public:
  // Loads all versions of all models. Any bundle failing to load fails the
  // whole load (a server should not come up half-configured).
  // NOT_FOUND: no repository, no bundles, or no default model.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Load(
      const RegistryOptions& options);

  // `model` empty: the default model; `version` empty: its latest version.
  // NOT_FOUND with a message naming what is unknown.
  absl::StatusOr<Servable*> Find(const std::string& model,
                                 const std::string& version) const;

  // Versions of `model` (empty: default), latest first; empty if unknown.
  std::vector<std::string> Versions(const std::string& model) const;

  // Calls `fn` on every loaded version.
  void ForEach(const std::function<void(const Servable&)>& fn) const;

  // Drains every servable's queue (graceful shutdown).
  void DrainAll();

 private:
  using VersionMap = std::map<int64_t, std::unique_ptr<Servable>,
                             std::greater<int64_t>>;  // latest first
  std::string default_model_;
  std::map<std::string, VersionMap> models_;
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_MODEL_REGISTRY_H_
