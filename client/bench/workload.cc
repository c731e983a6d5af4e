#include "client/bench/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/request_json.h"

namespace fusion::bench {

absl::StatusOr<LengthDistribution> ParseLengthDistribution(
    absl::string_view spec) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ':');
  LengthDistribution d;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token lengths '", spec, "': ", why,
        " (expected fixed:N, uniform:MIN:MAX or normal:MEAN:STD)"));
  };
  const size_t arity = parts[0] == "fixed" ? 2 : 3;
  if (parts[0] == "fixed") {
    d.kind = LengthDistribution::Kind::kFixed;
  } else if (parts[0] == "uniform") {
    d.kind = LengthDistribution::Kind::kUniform;
  } else if (parts[0] == "normal") {
    d.kind = LengthDistribution::Kind::kNormal;
  } else {
    return bad("unknown distribution");
  }
  if (parts.size() != arity) return bad("wrong number of parameters");
  if (!absl::SimpleAtod(parts[1], &d.a) ||
      (arity == 3 && !absl::SimpleAtod(parts[2], &d.b))) {
    return bad("parameters must be numbers");
  }
  if (d.a < 0 || d.b < 0 ||
      (d.kind == LengthDistribution::Kind::kUniform && d.b < d.a)) {
    return bad("parameters must be >= 0 (and MIN <= MAX)");
  }
  return d;
}

int SampleLength(const LengthDistribution& d, std::mt19937_64& rng, int min_len,
                 int max_len) {
  double x = d.a;
  switch (d.kind) {
    case LengthDistribution::Kind::kFixed:
      break;
    case LengthDistribution::Kind::kUniform:
      x = std::uniform_real_distribution<double>(d.a, d.b + 1)(rng);
      x = std::floor(x);
      break;
    case LengthDistribution::Kind::kNormal:
      x = std::normal_distribution<double>(d.a, d.b)(rng);
      break;
  }
  return std::clamp(static_cast<int>(std::lround(x)), min_len, max_len);
}

absl::StatusOr<Workload> Workload::FromJsonLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  Workload w;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<fusion::v1::ScoreRequest> request =
        client::ParseRequestLine(line);
    if (!request.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": ", request.status().message()));
    }
    request->set_attention(fusion::v1::ATTENTION_NONE);
    w.plain_.push_back(*std::move(request));
  }
  if (w.plain_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no requests"));
  }
  w.description_ = absl::StrCat(path, " (", w.plain_.size(), " requests)");
  w.Finalize();
  return w;
}

absl::StatusOr<Workload> Workload::Synthetic(
    const SyntheticSpec& spec, const fusion::v1::ModelMetadata& metadata) {
  if (spec.count < 1) {
    return absl::InvalidArgumentError("synthetic count must be >= 1");
  }
  if (metadata.vocab_size() <= spec.first_regular_id ||
      metadata.max_tokens() < 2 || metadata.features_size() == 0) {
    return absl::InvalidArgumentError(
        "the model's metadata lacks vocab_size, max_tokens or features");
  }
  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<int> token(spec.first_regular_id,
                                           metadata.vocab_size() - 1);
  std::normal_distribution<double> unit(0.0, 1.0);
  Workload w;
  for (int i = 0; i < spec.count; ++i) {
    fusion::v1::ScoreRequest r;
    r.set_request_id(absl::StrCat("synthetic-", i));
    const int length =
        SampleLength(spec.lengths, rng, 2, metadata.max_tokens());
    r.add_token_ids(spec.cls_id);
    for (int t = 2; t < length; ++t) r.add_token_ids(token(rng));
    r.add_token_ids(spec.sep_id);
    for (const auto& f : metadata.features()) {
      const double v = f.mean() + f.std() * unit(rng);
      r.add_feature_vector(static_cast<float>(std::max(0.0, v)));
    }
    w.plain_.push_back(std::move(r));
  }
  w.description_ = absl::StrCat("synthetic (", spec.count, " requests)");
  w.Finalize();
  return w;
}

void Workload::SetModel(const std::string& model, const std::string& version) {
  for (auto* requests : {&plain_, &with_attention_}) {
    for (fusion::v1::ScoreRequest& r : *requests) {
      if (!model.empty()) r.set_model(model);
      if (!version.empty()) r.set_model_version(version);
    }
  }
}

absl::Status Workload::ConvertToV2(const client::V2ModelInfo& model,
                                   const client::V2Options& options) {
  std::vector<inference::ModelInferRequest> plain, with_attention;
  plain.reserve(plain_.size());
  with_attention.reserve(plain_.size());
  for (size_t i = 0; i < plain_.size(); ++i) {
    absl::StatusOr<inference::ModelInferRequest> a =
        client::ToV2Request(plain_[i], model, options);
    absl::StatusOr<inference::ModelInferRequest> b =
        a.ok() ? client::ToV2Request(with_attention_[i], model, options)
               : a.status();
    if (!b.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request ", i + 1, " (request_id '", plain_[i].request_id(),
          "') as v2: ", b.status().message()));
    }
    plain.push_back(*std::move(a));
    with_attention.push_back(*std::move(b));
  }
  v2_plain_ = std::move(plain);
  v2_with_attention_ = std::move(with_attention);
  return absl::OkStatus();
}

double Workload::mean_token_ids() const {
  double sum = 0;
  for (const auto& r : plain_) sum += r.token_ids_size();
  return plain_.empty() ? 0 : sum / plain_.size();
}

void Workload::Finalize() {
  with_attention_ = plain_;
  for (fusion::v1::ScoreRequest& r : with_attention_) {
    r.set_attention(fusion::v1::ATTENTION_MEAN);
  }
}

}  // namespace fusion::bench
