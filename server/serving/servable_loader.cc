#include "server/serving/servable_loader.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/common/log.h"
#include "server/runtime/cpu_budget.h"
#include "server/runtime/golden_file.h"
#include "server/serving/bundle_consistency.h"
#include "server/serving/forward_cost.h"
#include "server/serving/warmup.h"

namespace fusion::serving {
namespace {

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

// The shapes a cost measurement times: the model's own limits.
ForwardCostOptions CostOptionsFor(const fusion::v1::ModelConfig& config) {
  ForwardCostOptions cost;
  cost.num_features = config.features_size();
  cost.max_tokens = config.max_tokens();
  cost.max_batch_size = config.batching().max_batch_size();
  return cost;
}

// An unset merge_cost_tokens means "measure it on this device".
absl::Status ResolveMergeCost(runtime::ModelRuntime& runtime,
                              fusion::v1::ModelConfig& config) {
  auto* b = config.mutable_batching();
  if (b->has_merge_cost_tokens()) return absl::OkStatus();
  auto tokens = MeasureMergeCostTokens(runtime, CostOptionsFor(config));
  if (!tokens.ok()) return tokens.status();
  b->set_merge_cost_tokens(*tokens);
  Log(LogLevel::kInfo, config.name(), " v", config.version(), " on ",
      runtime.device(), ": a forward's fixed cost is ",
      absl::SixDigits(*tokens), " token positions (merge_cost_tokens)");
  return absl::OkStatus();
}

// Unset bucket_max_batch_sizes mean "measure them on this device": after
// the warm-up, so that no first-shape cost is timed. On by default: with
// every bucket up to max_batch_size, a backlog fills batches of 64 long
// rows, which on a CPU compute a third of the rows per second of small
// ones, so a server at 70% of capacity that fell behind once stayed behind
// (the soak's collapse, bench/results/backlog_throughput.json).
// --bucket_max_batch_sizes=off fills them in before this runs.
absl::Status ResolveBucketBatchCaps(runtime::ModelRuntime& runtime,
                                    fusion::v1::ModelConfig& config) {
  auto* b = config.mutable_batching();
  if (!b->bucket_max_batch_sizes().empty()) return absl::OkStatus();
  ForwardCostOptions cost = CostOptionsFor(config);
  cost.repetitions = 3;
  const std::vector<int> edges(b->length_bucket_edges().begin(),
                               b->length_bucket_edges().end());
  const absl::Time start = absl::Now();
  auto caps = MeasureBucketBatchCaps(runtime, cost, edges);
  if (!caps.ok()) return caps.status();
  std::string listed;
  for (size_t i = 0; i < caps->size(); ++i) {
    b->add_bucket_max_batch_sizes((*caps)[i]);
    absl::StrAppend(&listed, i == 0 ? "" : ", ",
                    i < edges.size() ? absl::StrCat("<=", edges[i])
                    : edges.empty()  ? std::string("any length")
                                     : absl::StrCat(">", edges.back()),
                    " tokens: ", (*caps)[i]);
  }
  Log(LogLevel::kInfo, config.name(), " v", config.version(), " on ",
      runtime.device(), ": largest batch per length bucket (", listed,
      "; measured in ", absl::FormatDuration(absl::Now() - start), ")");
  return absl::OkStatus();
}

// Executors for an unset instance_count: as many as the process's intra-op
// threads leave CPUs for (runtime::PlanThreads). Every model gets the whole
// plan: an idle model's executors only sleep, so a static split would
// leave CPUs idle whenever the models' traffic differs.
void ResolveInstanceCount(const LoaderOptions& options,
                          const runtime::ModelRuntime& runtime,
                          fusion::v1::ModelConfig& config) {
  auto* b = config.mutable_batching();
  const int cpus = runtime::UsableCpuCount();
  const runtime::ThreadPlan plan = runtime::PlanThreads(
      cpus, options.gpu, b->instance_count(), options.intra_op_threads);
  b->set_instance_count(plan.executors);
  Log(LogLevel::kInfo, config.name(), " v", config.version(), " on ",
      runtime.device(), ": ", plan.executors, " executor(s) x ",
      options.intra_op_threads, " intra-op thread(s); usable CPUs: ", cpus);
}

absl::StatusOr<LoadedVersion> Load(const LoaderOptions& options,
                                   const std::string& bundle_dir,
                                   const std::string& name, int64_t version) {
  auto config = runtime::LoadBundleConfig(bundle_dir, options.overrides);
  if (!config.ok()) return config.status();
  if (config->name() != name || config->version() != version) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.pbtxt says model '", config->name(), "' version ",
                     config->version(), ", the directory says '", name,
                     "' version ", version));
  }
  const std::string vocab_path =
      bundle_dir + "/" + config->tokenizer().vocab_file();
  auto tokenizer = text::WordPieceTokenizer::FromVocabFile(
      vocab_path, TokenizerOptions(*config));
  if (!tokenizer.ok()) return tokenizer.status();
  // The runtime checks the model against the config's shapes and the
  // golden answers (those errors come first: they say more); then the
  // vocabulary against both.
  auto runtime = options.runtime_factory(bundle_dir, *config);
  if (!runtime.ok()) return runtime.status();
  auto golden = runtime::ReadGoldenFile(
      absl::StrCat(bundle_dir, "/", runtime::kGoldenFileName));
  if (!golden.ok() && !absl::IsNotFound(golden.status())) {
    return golden.status();
  }
  if (golden.ok()) {
    if (absl::Status agrees =
            CheckGoldenTokenization(*golden, **tokenizer, vocab_path);
        !agrees.ok()) {
      return agrees;
    }
  }
  if (absl::Status fits = CheckVocabularyFitsModel(
          **runtime, **tokenizer, config->features_size(), vocab_path);
      !fits.ok()) {
    return fits;
  }
  ResolveInstanceCount(options, **runtime, *config);
  if (absl::Status status = ResolveMergeCost(**runtime, *config);
      !status.ok()) {
    return status;
  }
  auto warmup_time = WarmUp(**runtime, **tokenizer, *config);
  if (!warmup_time.ok()) return warmup_time.status();
  if (absl::Status status = ResolveBucketBatchCaps(**runtime, *config);
      !status.ok()) {
    return status;
  }
  ServingObserver* observer =
      options.observer_factory
          ? options.observer_factory(name, std::to_string(version))
          : nullptr;
  ServableOptions servable_options;
  servable_options.overlap_collation =
      OverlapCollation(config->batching().pipelining(), (*runtime)->device());
  Log(LogLevel::kInfo, name, " v", version,
      servable_options.overlap_collation
          ? ": collates each batch during the previous one's forward"
          : ": collates each batch after the previous one's forward");
  auto servable =
      Servable::Create(std::move(*config), std::move(*runtime),
                       std::move(*tokenizer), observer, servable_options);
  if (!servable.ok()) return servable.status();
  return LoadedVersion{std::shared_ptr<Servable>(std::move(*servable)),
                       *warmup_time};
}

}  // namespace

ServableLoader MakeServableLoader(LoaderOptions options) {
  return
      [options = std::move(options)](const std::string& bundle_dir,
                                     const std::string& name, int64_t version) {
        return Load(options, bundle_dir, name, version);
      };
}

}  // namespace fusion::serving
