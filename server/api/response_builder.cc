#include "server/api/response_builder.h"

#include <utility>

#include "server/runtime/precision.h"

namespace fusion::api {

void FillScoreResponse(const std::string& request_id,
                       const serving::Servable& servable,
                       std::vector<std::string> tokens, bool truncated,
                       serving::ScoringResult result, int64_t total_us,
                       fusion::v1::ScoreResponse& response) {
  const fusion::v1::ModelConfig& config = servable.config();
  runtime::ScoringOutput& out = result.output;
  response.set_request_id(request_id);
  response.set_model(config.name());
  response.set_model_version(servable.version());
  response.set_score(out.probabilities.at(config.positive_class()));
  response.mutable_probabilities()->Add(out.probabilities.begin(),
                                        out.probabilities.end());
  response.set_truncated(truncated);
  if (!out.text_to_features_shape.empty()) {
    fusion::v1::Attention* attention = response.mutable_attention();
    for (std::string& token : tokens) attention->add_tokens(std::move(token));
    for (const auto& feature : config.features()) {
      attention->add_feature_names(feature.name());
    }
    attention->mutable_text_to_features()->Add(out.text_to_features.begin(),
                                               out.text_to_features.end());
    attention->mutable_text_to_features_shape()->Add(
        out.text_to_features_shape.begin(), out.text_to_features_shape.end());
    attention->mutable_features_to_text()->Add(out.features_to_text.begin(),
                                               out.features_to_text.end());
    attention->mutable_features_to_text_shape()->Add(
        out.features_to_text_shape.begin(), out.features_to_text_shape.end());
  }
  fusion::v1::Timing* timing = response.mutable_timing();
  timing->set_queue_us(result.timing.queue_us);
  timing->set_compute_us(result.timing.compute_us);
  timing->set_batch_size(result.timing.batch_size);
  timing->set_total_us(total_us);
}

fusion::v1::VersionStatus ToVersionStatusProto(
    const serving::VersionStatus& status) {
  fusion::v1::VersionStatus proto;
  proto.set_version(std::to_string(status.version));
  switch (status.state) {
    case serving::VersionState::kLoading:
      proto.set_state(fusion::v1::VERSION_LOADING);
      break;
    case serving::VersionState::kReady:
      proto.set_state(fusion::v1::VERSION_READY);
      break;
    case serving::VersionState::kUnloading:
      proto.set_state(fusion::v1::VERSION_UNLOADING);
      break;
    case serving::VersionState::kFailed:
      proto.set_state(fusion::v1::VERSION_FAILED);
      break;
  }
  proto.set_reason(status.reason);
  proto.set_load_seconds(absl::ToDoubleSeconds(status.load_time));
  proto.set_warmup_seconds(absl::ToDoubleSeconds(status.warmup_time));
  return proto;
}

fusion::v1::ModelMetadata BuildModelMetadata(
    const serving::Servable& servable, const serving::ModelStatus& model) {
  const fusion::v1::ModelConfig& config = servable.config();
  fusion::v1::ModelMetadata metadata;
  metadata.set_name(config.name());
  for (const serving::VersionStatus& version : model.versions) {
    if (version.state == serving::VersionState::kReady) {
      metadata.add_versions(std::to_string(version.version));
    }
    *metadata.add_version_status() = ToVersionStatusProto(version);
  }
  metadata.set_version(servable.version());
  metadata.set_platform(config.platform());
  for (const std::string& name : config.classes()) metadata.add_classes(name);
  metadata.set_positive_class(config.positive_class());
  for (const auto& spec : config.features()) {
    fusion::v1::FeatureMetadata* feature = metadata.add_features();
    feature->set_name(spec.name());
    feature->set_description(spec.description());
    feature->set_allow_missing(spec.allow_missing());
    feature->set_default_value(spec.default_value());
    feature->set_mean(spec.mean());
    feature->set_std(spec.std());
  }
  metadata.set_max_tokens(config.max_tokens());
  metadata.set_vocab_size(servable.tokenizer().vocab_size());
  metadata.set_attention_heads(config.attention_heads());
  metadata.set_device(servable.device());
  const runtime::PrecisionPlan precision = servable.precision();
  metadata.set_precision(runtime::PrecisionName(precision));
  metadata.set_bf16_min_positions(precision.bf16_min_positions);
  const auto& b = config.batching();
  fusion::v1::BatchingMetadata* batching = metadata.mutable_batching();
  batching->set_max_batch_size(b.max_batch_size());
  batching->set_max_queue_delay_us(b.max_queue_delay_us());
  batching->mutable_preferred_batch_sizes()->CopyFrom(
      b.preferred_batch_sizes());
  batching->set_max_queue_size(b.max_queue_size());
  batching->set_max_queue_wait_us(b.max_queue_wait_us());
  batching->mutable_bucket_max_batch_sizes()->CopyFrom(
      b.bucket_max_batch_sizes());
  batching->mutable_length_bucket_edges()->CopyFrom(b.length_bucket_edges());
  batching->set_priority_levels(b.priority_levels());
  batching->set_instance_count(b.instance_count());
  metadata.set_truncation(
      fusion::v1::TruncationPolicy_Name(config.tokenizer().truncation()));
  metadata.set_description(config.description());
  return metadata;
}

}  // namespace fusion::api
