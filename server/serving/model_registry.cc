#include "server/serving/model_registry.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/log.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/cpu_budget.h"
#include "server/serving/forward_cost.h"

namespace fusion::serving {
namespace {

namespace fs = std::filesystem;

text::WordPieceTokenizerOptions TokenizerOptions(
    const fusion::v1::ModelConfig& config) {
  const auto& t = config.tokenizer();
  text::WordPieceTokenizerOptions options;
  options.lowercase = t.lowercase();
  options.tokenize_cjk_chars = t.tokenize_cjk_chars();
  options.unk_token = t.unk_token();
  options.cls_token = t.cls_token();
  options.sep_token = t.sep_token();
  options.pad_token = t.pad_token();
  options.max_chars_per_word = t.max_chars_per_word();
  options.max_tokens = config.max_tokens();
  options.truncation = t.truncation() == fusion::v1::TRUNCATION_REJECT
                           ? text::TruncationPolicy::kReject
                           : text::TruncationPolicy::kTruncate;
  return options;
}

void ApplyOverrides(const BatchingOverrides& o, fusion::v1::ModelConfig& c) {
  auto* b = c.mutable_batching();
  if (o.max_batch_size > 0) b->set_max_batch_size(o.max_batch_size);
  if (o.max_queue_delay_us >= 0) b->set_max_queue_delay_us(o.max_queue_delay_us);
  if (o.max_queue_size > 0) b->set_max_queue_size(o.max_queue_size);
  if (o.instance_count > 0) b->set_instance_count(o.instance_count);
  if (o.merge_cost_tokens >= 0) b->set_merge_cost_tokens(o.merge_cost_tokens);
  if (o.pipelining) b->set_pipelining(*o.pipelining);
}

bool OverlapCollation(fusion::v1::BatchingConfig::Pipelining pipelining,
                      const std::string& device) {
  switch (pipelining) {
    case fusion::v1::BatchingConfig::PIPELINING_ON:
      return true;
    case fusion::v1::BatchingConfig::PIPELINING_OFF:
      return false;
    default:
      return absl::StartsWith(device, "cuda");
  }
}

// An unset merge_cost_tokens means "measure it on this device".
absl::Status ResolveMergeCost(runtime::ModelRuntime& runtime,
                              fusion::v1::ModelConfig& config) {
  auto* b = config.mutable_batching();
  if (b->has_merge_cost_tokens()) return absl::OkStatus();
  ForwardCostOptions cost;
  cost.num_features = config.features_size();
  cost.max_tokens = config.max_tokens();
  cost.max_batch_size = b->max_batch_size();
  auto tokens = MeasureMergeCostTokens(runtime, cost);
  if (!tokens.ok()) return tokens.status();
  b->set_merge_cost_tokens(*tokens);
  Log(LogLevel::kInfo, config.name(), " v", config.version(), " on ",
      runtime.device(), ": a forward's fixed cost is ",
      absl::SixDigits(*tokens), " token positions (merge_cost_tokens)");
  return absl::OkStatus();
}

// An unset instance_count is chosen once the device and the runtime's
// threads are known (runtime::PlanThreads); the plan is logged either way.
void ResolveInstanceCount(const runtime::ModelRuntime& runtime,
                          fusion::v1::ModelConfig& config) {
  auto* b = config.mutable_batching();
  const int cpus = runtime::UsableCpuCount();
  const runtime::ThreadPlan plan = runtime::PlanThreads(
      cpus, absl::StartsWith(runtime.device(), "cuda"), b->instance_count(),
      runtime.intra_op_threads());
  b->set_instance_count(plan.executors);
  Log(LogLevel::kInfo, config.name(), " v", config.version(), " on ",
      runtime.device(), ": ", plan.executors, " executor(s) x ",
      runtime.intra_op_threads(), " intra-op thread(s); usable CPUs: ", cpus);
}

// The bundle's config must agree with where it sits in the repository.
absl::StatusOr<std::unique_ptr<Servable>> LoadServable(
    const std::string& bundle_dir, const std::string& name, int64_t version,
    const RegistryOptions& options) {
  auto config = runtime::LoadBundleConfig(bundle_dir);
  if (!config.ok()) return config.status();
  if (config->name() != name || config->version() != version) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.pbtxt says model '", config->name(), "' version ",
        config->version(), ", the directory says '", name, "' version ",
        version));
  }
  ApplyOverrides(options.overrides, *config);
  auto tokenizer = text::WordPieceTokenizer::FromVocabFile(
      bundle_dir + "/" + config->tokenizer().vocab_file(),
      TokenizerOptions(*config));
  if (!tokenizer.ok()) return tokenizer.status();
  auto runtime = options.runtime_factory(bundle_dir, *config);
  if (!runtime.ok()) return runtime.status();
  ResolveInstanceCount(**runtime, *config);
  if (absl::Status status = ResolveMergeCost(**runtime, *config); !status.ok()) {
    return status;
  }
  ServingObserver* observer =
      options.observer_factory
          ? options.observer_factory(config->name(),
                                     std::to_string(config->version()))
          : nullptr;
  ServableOptions servable_options;
  servable_options.overlap_collation =
      OverlapCollation(config->batching().pipelining(), (*runtime)->device());
  Log(LogLevel::kInfo, config->name(), " v", config->version(),
      servable_options.overlap_collation
          ? ": collates each batch during the previous one's forward"
          : ": collates each batch after the previous one's forward");
  return Servable::Create(std::move(*config), std::move(*runtime),
                          std::move(*tokenizer), observer, servable_options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Load(
    const RegistryOptions& options) {
  std::error_code error;
  if (!fs::is_directory(options.repository, error)) {
    return absl::NotFoundError(
        absl::StrCat("model repository not found: ", options.repository));
  }
  auto registry = std::unique_ptr<ModelRegistry>(new ModelRegistry());
  registry->default_model_ = options.default_model;
  for (const auto& model_dir : fs::directory_iterator(options.repository)) {
    if (!model_dir.is_directory()) continue;
    for (const auto& version_dir : fs::directory_iterator(model_dir.path())) {
      int64_t version = 0;
      if (!version_dir.is_directory() ||
          !absl::SimpleAtoi(version_dir.path().filename().string(), &version) ||
          !fs::exists(version_dir.path() / "config.pbtxt")) {
        continue;
      }
      const std::string bundle = version_dir.path().string();
      const std::string name = model_dir.path().filename().string();
      const absl::Time start = absl::Now();
      auto servable = LoadServable(bundle, name, version, options);
      if (!servable.ok()) {
        return absl::Status(servable.status().code(),
                            absl::StrCat(bundle, ": ", servable.status().message()));
      }
      const absl::Duration load_time = absl::Now() - start;
      Log(LogLevel::kInfo, "loaded ", bundle, " on ", (*servable)->device(),
          " in ", absl::FormatDuration(load_time));
      if (options.on_loaded) options.on_loaded(**servable, load_time);
      registry->models_[name][version] = std::move(*servable);
    }
  }
  if (registry->models_.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no model bundles under ", options.repository));
  }
  if (!registry->models_.count(options.default_model)) {
    return absl::NotFoundError(absl::StrCat(
        "default model '", options.default_model, "' not in ",
        options.repository));
  }
  return registry;
}

absl::StatusOr<Servable*> ModelRegistry::Find(const std::string& model,
                                              const std::string& version) const {
  const std::string& name = model.empty() ? default_model_ : model;
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  }
  if (version.empty()) return it->second.begin()->second.get();
  int64_t number = 0;
  auto found = absl::SimpleAtoi(version, &number) ? it->second.find(number)
                                                  : it->second.end();
  if (found == it->second.end()) {
    return absl::NotFoundError(
        absl::StrCat("model '", name, "' has no version '", version, "'"));
  }
  return found->second.get();
}

std::vector<std::string> ModelRegistry::Versions(const std::string& model) const {
  std::vector<std::string> versions;
  auto it = models_.find(model.empty() ? default_model_ : model);
  if (it == models_.end()) return versions;
  for (const auto& [number, servable] : it->second) {
    versions.push_back(std::to_string(number));
  }
  return versions;
}

void ModelRegistry::ForEach(
    const std::function<void(const Servable&)>& fn) const {
  for (const auto& [name, versions] : models_) {
    for (const auto& [number, servable] : versions) fn(*servable);
  }
}

void ModelRegistry::DrainAll() {
  for (auto& [name, versions] : models_) {
    for (auto& [number, servable] : versions) servable->Drain();
  }
}

}  // namespace fusion::serving
