#include "tests/fuzz/fuzz_model.h"

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "server/runtime/fake_model_runtime.h"
#include "server/serving/servable_loader.h"

namespace fusion::fuzz {
namespace {

[[noreturn]] void Fail(const absl::Status& status) {
  std::fprintf(stderr, "fuzz model: %s\n", status.ToString().c_str());
  std::abort();
}

}  // namespace

FuzzModel& FuzzModel::Get() {
  static FuzzModel* const model = [] {
    auto* m = new FuzzModel();
    // The server's own loader: config with overrides, tokenizer from the
    // config, warm-up; only the runtime is the fake.
    serving::LoaderOptions loader;
    // One executor, a fixed merge cost and no measured batch caps: every
    // run forms batches alike.
    loader.overrides.instance_count = 1;
    loader.overrides.merge_cost_tokens = 16;
    loader.overrides.bucket_max_batch_sizes = std::vector<int>{};
    loader.runtime_factory = [](const std::string&,
                                const fusion::v1::ModelConfig& config)
        -> absl::StatusOr<std::unique_ptr<runtime::ModelRuntime>> {
      return std::make_unique<runtime::FakeModelRuntime>(
          config.attention_heads());
    };
    serving::RegistryOptions options;
    options.repository = FUSION_SOURCE_DIR "/models";
    options.default_model = "fusion";
    options.models = {"fusion"};
    options.loader = serving::MakeServableLoader(std::move(loader));
    auto registry = serving::ModelRegistry::Load(std::move(options));
    if (!registry.ok()) Fail(registry.status());
    m->registry_ = std::move(*registry);
    m->state_.SetReady(m->registry_.get());
    return m;
  }();
  return *model;
}

}  // namespace fusion::fuzz
