// The requests fusion-bench sends: read from a JSON-lines file (golden.jsonl
// works as is) or generated with a token-length distribution. Immutable once
// built, so any number of threads may read it.
#ifndef FUSION_CLIENT_BENCH_WORKLOAD_H_
#define FUSION_CLIENT_BENCH_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/v2_request.h"
#include "fusion/v1/scoring.pb.h"
#include "inference/grpc_service.pb.h"

namespace fusion::bench {

// Token lengths ([CLS] and [SEP] included) of generated requests:
// "fixed:N", "uniform:MIN:MAX" or "normal:MEAN:STD".
struct LengthDistribution {
  enum class Kind { kFixed, kUniform, kNormal };
  Kind kind = Kind::kFixed;
  double a = 32, b = 0;
};
absl::StatusOr<LengthDistribution> ParseLengthDistribution(
    absl::string_view spec);
// A draw, rounded and clamped to [min_len, max_len].
int SampleLength(const LengthDistribution& distribution, std::mt19937_64& rng,
                 int min_len, int max_len);

struct SyntheticSpec {
  LengthDistribution lengths;
  int count = 1000;
  uint64_t seed = 1;
  int cls_id = 2, sep_id = 3;  // the bundled vocab: [PAD] [UNK] [CLS] [SEP]
  int first_regular_id = 5;    // ids below are special tokens
};

// One request of the pool in both protocols; `v2` is null until
// Workload::ConvertToV2. Points into the workload.
struct WorkItem {
  const fusion::v1::ScoreRequest* native = nullptr;
  const inference::ModelInferRequest* v2 = nullptr;
};

class Workload {
 public:
  // Every non-blank line as a request (see client/request_json.h).
  // INVALID_ARGUMENT names the first bad line; an empty file is an error.
  static absl::StatusOr<Workload> FromJsonLines(const std::string& path);

  // `count` requests of token_ids (lengths from the distribution, at most
  // metadata.max_tokens) and a feature_vector drawn around each feature's
  // training mean. INVALID_ARGUMENT for a spec the model cannot take.
  static absl::StatusOr<Workload> Synthetic(
      const SyntheticSpec& spec, const fusion::v1::ModelMetadata& metadata);

  // Sets model / model_version on every request (empty: leave as is).
  void SetModel(const std::string& model, const std::string& version);

  size_t size() const { return plain_.size(); }
  // Request i (i < size()), without attention or with mean attention.
  const fusion::v1::ScoreRequest& Get(size_t i, bool with_attention) const {
    return with_attention ? with_attention_[i] : plain_[i];
  }
  // Request i as a WorkItem (v2 set after ConvertToV2).
  WorkItem Item(size_t i, bool with_attention) const {
    WorkItem item;
    item.native = &Get(i, with_attention);
    if (!v2_plain_.empty()) {
      item.v2 = with_attention ? &v2_with_attention_[i] : &v2_plain_[i];
    }
    return item;
  }
  // Builds the v2 form of every request (see client/v2_request.h), after
  // SetModel. INVALID_ARGUMENT names the first request that cannot be
  // converted (e.g. a missing required feature).
  absl::Status ConvertToV2(const client::V2ModelInfo& model,
                           const client::V2Options& options);
  bool has_v2() const { return !v2_plain_.empty(); }

  // Mean token count of requests sent as token_ids; 0 if all are text.
  double mean_token_ids() const;
  const std::string& description() const { return description_; }

 private:
  void Finalize();  // builds with_attention_ from plain_

  std::vector<fusion::v1::ScoreRequest> plain_;
  std::vector<fusion::v1::ScoreRequest> with_attention_;
  std::vector<inference::ModelInferRequest> v2_plain_, v2_with_attention_;
  std::string description_;
};

}  // namespace fusion::bench

#endif  // FUSION_CLIENT_BENCH_WORKLOAD_H_
