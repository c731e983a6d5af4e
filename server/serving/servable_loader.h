// Turns a bundle directory into a warmed-up Servable: config (with the
// server's overrides) → tokenizer (checked against golden.jsonl's texts) →
// runtime (checked against golden.jsonl's answers and the vocabulary) →
// executors and merge cost resolved → warm-up → batch queue started. The
// ModelRegistry's loader.
#ifndef FUSION_SERVER_SERVING_SERVABLE_LOADER_H_
#define FUSION_SERVER_SERVING_SERVABLE_LOADER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fusion/v1/model_config.pb.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/model_runtime.h"
#include "server/serving/model_registry.h"
#include "server/serving/serving_observer.h"

namespace fusion::serving {

using RuntimeFactory =
    std::function<absl::StatusOr<std::unique_ptr<runtime::ModelRuntime>>(
        const std::string& bundle_dir, const fusion::v1::ModelConfig& config)>;

// The observer of one model version (not owned; outlives the servable).
using ObserverFactory = std::function<ServingObserver*(
    const std::string& model, const std::string& version)>;

struct LoaderOptions {
  runtime::BatchingOverrides overrides;
  RuntimeFactory runtime_factory;
  ObserverFactory observer_factory;  // optional
  // LibTorch intra-op threads per forward, the same for every model (a
  // process-wide setting): an unset instance_count is planned from it.
  int intra_op_threads = 1;
  bool gpu = false;
};

// The config must agree with the directory (name and version), else
// INVALID_ARGUMENT; golden.jsonl's texts must tokenize to its token ids and
// the model must take the vocabulary's every id, else FAILED_PRECONDITION
// (bundle_consistency.h); other errors come from the config, tokenizer,
// golden file, runtime or warm-up. Each names the file at fault.
ServableLoader MakeServableLoader(LoaderOptions options);

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_SERVABLE_LOADER_H_
