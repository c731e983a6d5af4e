#include "server/runtime/golden_file.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fusion::runtime {

absl::StatusOr<std::vector<GoldenCase>> ReadGoldenFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::vector<GoldenCase> cases;
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.empty()) continue;
    try {
      const auto json = nlohmann::json::parse(line);
      GoldenCase golden;
      golden.input.token_ids = json.at("token_ids").get<std::vector<int32_t>>();
      golden.input.features =
          json.at("feature_vector").get<std::vector<float>>();
      golden.probabilities = json.at("probabilities").get<std::vector<float>>();
      if (const auto id = json.find("request_id");
          id != json.end() && id->is_string()) {
        golden.request_id = id->get<std::string>();
      }
      if (const auto text = json.find("text");
          text != json.end() && text->is_string()) {
        golden.text = text->get<std::string>();
      }
      golden.line = line_number;
      cases.push_back(std::move(golden));
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": ", e.what()));
    }
  }
  return cases;
}

std::string DescribeGoldenCase(const GoldenCase& golden) {
  std::string out = absl::StrCat(kGoldenFileName, " line ", golden.line);
  if (!golden.request_id.empty())
    absl::StrAppend(&out, " (", golden.request_id, ")");
  return out;
}

absl::Status CheckGoldenCasesFit(const std::vector<GoldenCase>& cases,
                                 int max_tokens, int num_features,
                                 int num_classes) {
  if (cases.empty()) return absl::InvalidArgumentError("no golden cases");
  for (size_t i = 0; i < cases.size(); ++i) {
    const GoldenCase& c = cases[i];
    const int tokens = static_cast<int>(c.input.token_ids.size());
    if (tokens < 1 || tokens > max_tokens ||
        static_cast<int>(c.input.features.size()) != num_features ||
        static_cast<int>(c.probabilities.size()) != num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          DescribeGoldenCase(c), " does not fit the model (", tokens,
          " tokens, ", c.input.features.size(), " features, ",
          c.probabilities.size(), " probabilities; expected 1-", max_tokens,
          ", ", num_features, ", ", num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

std::optional<std::string> FirstDisagreement(
    const std::vector<GoldenCase>& cases,
    const std::vector<ScoringOutput>& outputs, double tolerance) {
  if (cases.size() != outputs.size()) {
    return absl::StrCat(outputs.size(), " answers for ", cases.size(),
                        " golden cases");
  }
  const auto format = [](std::string* out, float p) {
    absl::StrAppend(out, absl::SixDigits(p));
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<float>& expected = cases[i].probabilities;
    const std::vector<float>& got = outputs[i].probabilities;
    double delta = expected.size() == got.size()
                       ? 0
                       : std::numeric_limits<double>::infinity();
    for (size_t c = 0; c < expected.size() && c < got.size(); ++c) {
      const double d = std::abs(static_cast<double>(got[c]) - expected[c]);
      delta = std::isnan(d) ? std::numeric_limits<double>::infinity()
                            : std::max(delta, d);
    }
    if (delta > tolerance) {
      return absl::StrCat(DescribeGoldenCase(cases[i]), ": expected [",
                          absl::StrJoin(expected, ", ", format), "], got [",
                          absl::StrJoin(got, ", ", format), "], off by ",
                          absl::SixDigits(delta));
    }
  }
  return std::nullopt;
}

double MaxProbabilityDelta(const std::vector<GoldenCase>& cases,
                           const std::vector<ScoringOutput>& outputs) {
  constexpr double kMismatch = std::numeric_limits<double>::infinity();
  if (cases.size() != outputs.size()) return kMismatch;
  double delta = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& expected = cases[i].probabilities;
    const auto& actual = outputs[i].probabilities;
    if (expected.size() != actual.size()) return kMismatch;
    for (size_t c = 0; c < expected.size(); ++c) {
      const double d = std::abs(static_cast<double>(actual[c]) - expected[c]);
      if (std::isnan(d)) return kMismatch;
      delta = std::max(delta, d);
    }
  }
  return delta;
}

}  // namespace fusion::runtime
