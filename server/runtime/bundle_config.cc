#include "server/runtime/bundle_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "server/batching/options.h"

namespace fusion::runtime {
namespace {

// Keeps the text-format parser's first error, as ":LINE:COLUMN: message"
// (lines and columns from 1), instead of letting it go to protobuf's log.
class FirstParseError final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (where_and_what.empty()) {
      where_and_what =
          absl::StrCat(":", line + 1, ":", column + 1, ": ", message);
    }
  }
  std::string where_and_what;
};

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("config.pbtxt: ", what));
}

void ApplyDefaults(fusion::v1::ModelConfig& c) {
  if (c.platform().empty()) c.set_platform("torchscript");
  if (c.model_file().empty()) c.set_model_file("model.pt");
  if (c.max_message_bytes() == 0) c.set_max_message_bytes(4 << 20);
  auto* tok = c.mutable_tokenizer();
  if (tok->vocab_file().empty()) tok->set_vocab_file("vocab.txt");
  if (tok->unk_token().empty()) tok->set_unk_token("[UNK]");
  if (tok->cls_token().empty()) tok->set_cls_token("[CLS]");
  if (tok->sep_token().empty()) tok->set_sep_token("[SEP]");
  if (tok->pad_token().empty()) tok->set_pad_token("[PAD]");
  if (tok->max_chars_per_word() == 0) tok->set_max_chars_per_word(100);
  // The batcher's own defaults: written once, in batching/options.h.
  const batching::BatchSchedulerOptions batcher;
  auto* b = c.mutable_batching();
  if (b->max_batch_size() == 0) b->set_max_batch_size(batcher.max_batch_size);
  if (b->length_bucket_edges().empty()) {
    for (int edge : batcher.length_bucket_edges)
      b->add_length_bucket_edges(edge);
  }
  if (b->max_queue_size() == 0) b->set_max_queue_size(batcher.max_queue_size);
  if (!b->has_max_queue_wait_us()) {
    b->set_max_queue_wait_us(
        batcher.max_queue_wait == absl::InfiniteDuration()
            ? 0
            : absl::ToInt64Microseconds(batcher.max_queue_wait));
  }
  if (b->priority_levels() == 0)
    b->set_priority_levels(batcher.priority_levels);
  auto* r = c.mutable_runtime();
  if (r->interop_threads() == 0) r->set_interop_threads(1);
  if (!r->has_warmup_iterations()) r->set_warmup_iterations(1);
}

void ApplyOverrides(const BatchingOverrides& o, fusion::v1::ModelConfig& c) {
  auto* b = c.mutable_batching();
  if (o.max_batch_size) b->set_max_batch_size(*o.max_batch_size);
  if (o.max_queue_delay_us) b->set_max_queue_delay_us(*o.max_queue_delay_us);
  if (o.max_queue_size) b->set_max_queue_size(*o.max_queue_size);
  if (o.max_queue_wait_us) b->set_max_queue_wait_us(*o.max_queue_wait_us);
  if (o.bucket_max_batch_sizes) {
    b->clear_bucket_max_batch_sizes();
    for (int size : *o.bucket_max_batch_sizes) {
      b->add_bucket_max_batch_sizes(size);
    }
    if (o.bucket_max_batch_sizes->empty()) {
      for (int i = 0; i <= b->length_bucket_edges_size(); ++i) {
        b->add_bucket_max_batch_sizes(b->max_batch_size());
      }
    }
  }
  if (o.instance_count) b->set_instance_count(*o.instance_count);
  if (o.merge_cost_tokens) b->set_merge_cost_tokens(*o.merge_cost_tokens);
  if (o.pipelining) b->set_pipelining(*o.pipelining);
}

absl::Status Validate(const fusion::v1::ModelConfig& c) {
  if (c.name().empty()) return Invalid("name is empty");
  if (c.version() <= 0) return Invalid("version must be positive");
  if (c.platform() != "torchscript") {
    return Invalid(absl::StrCat("unsupported platform '", c.platform(), "'"));
  }
  if (c.classes_size() < 2) return Invalid("at least two classes needed");
  if (c.positive_class() < 0 || c.positive_class() >= c.classes_size()) {
    return Invalid("positive_class out of range");
  }
  if (c.max_tokens() < 3) return Invalid("max_tokens must be at least 3");
  if (c.attention_heads() <= 0) return Invalid("attention_heads must be > 0");
  if (c.features_size() == 0) return Invalid("no features");
  std::set<std::string> names;
  for (const auto& f : c.features()) {
    if (f.name().empty()) return Invalid("a feature has no name");
    if (!names.insert(f.name()).second) {
      return Invalid(absl::StrCat("duplicate feature '", f.name(), "'"));
    }
  }
  const auto& b = c.batching();
  if (b.max_batch_size() < 1) return Invalid("max_batch_size must be >= 1");
  if (b.max_queue_delay_us() < 0) return Invalid("max_queue_delay_us < 0");
  if (b.max_queue_size() < 1) return Invalid("max_queue_size must be >= 1");
  if (!b.bucket_max_batch_sizes().empty()) {
    if (b.bucket_max_batch_sizes_size() != b.length_bucket_edges_size() + 1) {
      return Invalid(absl::StrCat(
          "bucket_max_batch_sizes needs one size per length bucket (",
          b.length_bucket_edges_size() + 1, ")"));
    }
    for (int size : b.bucket_max_batch_sizes()) {
      if (size < 1) return Invalid("bucket_max_batch_sizes must be >= 1");
    }
  }
  if (b.max_queue_wait_us() < 0) {
    return Invalid("max_queue_wait_us must be >= 0 (0: no bound)");
  }
  if (b.priority_levels() < 1) return Invalid("priority_levels must be >= 1");
  if (b.instance_count() < 0) {
    return Invalid("instance_count must be >= 0 (0: chosen at load)");
  }
  if (!(b.merge_cost_tokens() >= 0 && std::isfinite(b.merge_cost_tokens()))) {
    return Invalid("merge_cost_tokens must be finite and >= 0");
  }
  for (int size : b.preferred_batch_sizes()) {
    if (size < 1 || size > b.max_batch_size()) {
      return Invalid("preferred_batch_sizes must lie in [1, max_batch_size]");
    }
  }
  int previous = 0;
  for (int edge : b.length_bucket_edges()) {
    if (edge <= previous) {
      return Invalid("length_bucket_edges must be positive and increasing");
    }
    previous = edge;
  }
  if (c.runtime().intra_op_threads() < 0 || c.runtime().interop_threads() < 0) {
    return Invalid("thread counts must be >= 0");
  }
  if (c.runtime().warmup_iterations() < 0) {
    return Invalid("warmup_iterations must be >= 0 (0: no warm-up)");
  }
  if (c.version_policy().has_latest() &&
      c.version_policy().latest().num_versions() < 0) {
    return Invalid("version_policy.latest.num_versions must be >= 0");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateOverrides(const BatchingOverrides& o) {
  auto bad = [](const char* what) {
    return absl::InvalidArgumentError(absl::StrCat("--", what));
  };
  if (o.max_batch_size && *o.max_batch_size < 1) {
    return bad("max_batch_size must be >= 1");
  }
  if (o.max_queue_delay_us && *o.max_queue_delay_us < 0) {
    return bad("max_queue_delay_us must be >= 0");
  }
  if (o.max_queue_size && *o.max_queue_size < 1) {
    return bad("max_queue_size must be >= 1");
  }
  if (o.max_queue_wait_us && *o.max_queue_wait_us < 0) {
    return bad("max_queue_wait_us must be >= 0 (0: no bound)");
  }
  if (o.instance_count && *o.instance_count < 1) {
    return bad("instance_count must be >= 1");
  }
  if (o.merge_cost_tokens &&
      !(*o.merge_cost_tokens >= 0 && std::isfinite(*o.merge_cost_tokens))) {
    return bad("merge_cost_tokens must be finite and >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<fusion::v1::ModelConfig> NormalizeConfig(
    fusion::v1::ModelConfig config, const BatchingOverrides& overrides) {
  ApplyDefaults(config);
  ApplyOverrides(overrides, config);
  if (absl::Status status = Validate(config); !status.ok()) return status;
  return config;
}

absl::StatusOr<fusion::v1::ModelConfig> LoadBundleConfig(
    const std::string& bundle_dir, const BatchingOverrides& overrides) {
  const std::string path = bundle_dir + "/config.pbtxt";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  fusion::v1::ModelConfig config;
  FirstParseError error;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&error);
  if (!parser.ParseFromString(text.str(), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse ", path, error.where_and_what));
  }
  return NormalizeConfig(std::move(config), overrides);
}

}  // namespace fusion::runtime
