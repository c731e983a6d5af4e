// The cross-language contract: LibTorch reproduces what the Python model
// wrote into golden.jsonl, alone and inside one padded batch; in fp32
// exactly, in bf16 within kMaxBf16ProbabilityDelta. And a bundle whose
// files disagree fails its load, saying which file and how.
#include "server/runtime/torch_model_runtime.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/runtime/bundle_config.h"
#include "server/runtime/precision.h"

namespace fusion::runtime {
namespace {

constexpr char kBundle[] = FUSION_SOURCE_DIR "/models/fusion/1";
constexpr float kTolerance = 1e-4f;

struct Golden {
  ScoringInput input;
  std::vector<float> probabilities;
  std::vector<float> text_to_features;  // [heads, tokens, features] flat
  std::vector<float> features_to_text;  // [heads, features, tokens] flat
};

void Flatten(const nlohmann::json& value, std::vector<float>& out) {
  if (value.is_array()) {
    for (const auto& item : value) Flatten(item, out);
  } else {
    out.push_back(value.get<float>());
  }
}

std::vector<Golden> ReadGolden() {
  std::ifstream in(std::string(kBundle) + "/golden.jsonl");
  EXPECT_TRUE(in) << "golden.jsonl missing";
  std::vector<Golden> goldens;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto json = nlohmann::json::parse(line);
    Golden g;
    g.input.token_ids = json["token_ids"].get<std::vector<int32_t>>();
    g.input.features = json["feature_vector"].get<std::vector<float>>();
    g.input.attention = AttentionDetail::kPerHead;
    g.probabilities = json["probabilities"].get<std::vector<float>>();
    Flatten(json["text_to_features"], g.text_to_features);
    Flatten(json["features_to_text"], g.features_to_text);
    goldens.push_back(std::move(g));
  }
  return goldens;
}

void ExpectNear(const std::vector<float>& actual,
                const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], kTolerance) << what << " [" << i << "]";
  }
}

class TorchModelRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto config = LoadBundleConfig(kBundle);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = new fusion::v1::ModelConfig(*config);
    TorchRuntimeOptions options;
    options.device = DevicePreference::kCpu;
    options.intra_op_threads = 2;
    SetProcessThreads(options.intra_op_threads, 1);
    options.precision = fusion::v1::RuntimeConfig::PRECISION_FP32;
    auto runtime = TorchModelRuntime::Create(kBundle, *config, options);
    ASSERT_TRUE(runtime.ok()) << runtime.status();
    runtime_ = runtime->release();
    goldens_ = new std::vector<Golden>(ReadGolden());
  }
  static void TearDownTestSuite() {
    delete runtime_;
    delete config_;
    delete goldens_;
  }

  // An id past the embedding table: collation takes it, forward throws.
  static ScoringInput OutOfVocab() {
    ScoringInput input = (*goldens_)[0].input;
    input.token_ids[1] = 1 << 30;
    return input;
  }

  static fusion::v1::ModelConfig* config_;
  static TorchModelRuntime* runtime_;
  static std::vector<Golden>* goldens_;
};

fusion::v1::ModelConfig* TorchModelRuntimeTest::config_ = nullptr;
TorchModelRuntime* TorchModelRuntimeTest::runtime_ = nullptr;
std::vector<Golden>* TorchModelRuntimeTest::goldens_ = nullptr;

TEST_F(TorchModelRuntimeTest, ReproducesEveryGoldenRequestAlone) {
  ASSERT_GE(goldens_->size(), 40u);
  EXPECT_EQ(runtime_->device(), "cpu");
  EXPECT_FALSE(runtime_->precision().bf16);
  for (size_t i = 0; i < goldens_->size(); ++i) {
    const Golden& g = (*goldens_)[i];
    const ScoringInput* batch[] = {&g.input};
    auto outputs = runtime_->RunBatch(batch);
    ASSERT_TRUE(outputs.ok()) << outputs.status();
    const std::string what = "golden " + std::to_string(i);
    ExpectNear((*outputs)[0].probabilities, g.probabilities, what + " probs");
    ExpectNear((*outputs)[0].text_to_features, g.text_to_features,
               what + " text_to_features");
    ExpectNear((*outputs)[0].features_to_text, g.features_to_text,
               what + " features_to_text");
    const int32_t tokens = g.input.token_ids.size();
    const int32_t heads = config_->attention_heads();
    const int32_t features = config_->features_size();
    EXPECT_EQ((*outputs)[0].text_to_features_shape,
              (std::vector<int32_t>{heads, tokens, features}));
    EXPECT_EQ((*outputs)[0].features_to_text_shape,
              (std::vector<int32_t>{heads, features, tokens}));
  }
}

TEST_F(TorchModelRuntimeTest, PaddedBatchMatchesAndWeightsGoOnlyToAskers) {
  std::vector<ScoringInput> inputs;
  for (const Golden& g : *goldens_) inputs.push_back(g.input);
  std::vector<const ScoringInput*> batch;
  for (size_t i = 0; i < inputs.size(); ++i) {
    // Mix the three kinds of request in one batch.
    inputs[i].attention = i % 3 == 0   ? AttentionDetail::kNone
                          : i % 3 == 1 ? AttentionDetail::kMean
                                       : AttentionDetail::kPerHead;
    batch.push_back(&inputs[i]);
  }
  auto outputs = runtime_->RunBatch(batch);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  ASSERT_EQ(outputs->size(), inputs.size());
  const int heads = config_->attention_heads();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Golden& g = (*goldens_)[i];
    const ScoringOutput& out = (*outputs)[i];
    const std::string what = "batched golden " + std::to_string(i);
    ExpectNear(out.probabilities, g.probabilities, what);
    switch (inputs[i].attention) {
      case AttentionDetail::kNone:
        EXPECT_TRUE(out.text_to_features.empty()) << what;
        EXPECT_TRUE(out.features_to_text.empty()) << what;
        break;
      case AttentionDetail::kMean: {
        // The head average of the golden per-head matrix.
        const size_t per_head = g.text_to_features.size() / heads;
        std::vector<float> mean(per_head, 0.0f);
        for (size_t k = 0; k < g.text_to_features.size(); ++k) {
          mean[k % per_head] += g.text_to_features[k] / heads;
        }
        ExpectNear(out.text_to_features, mean, what + " mean");
        EXPECT_EQ(out.text_to_features_shape.size(), 2u);
        break;
      }
      case AttentionDetail::kPerHead:
        ExpectNear(out.text_to_features, g.text_to_features, what);
        ExpectNear(out.features_to_text, g.features_to_text, what);
        break;
    }
  }
}

TEST_F(TorchModelRuntimeTest, RejectsMalformedInputWithoutBreaking) {
  ScoringInput bad = (*goldens_)[0].input;
  bad.features.pop_back();
  const ScoringInput* bad_batch[] = {&bad};
  EXPECT_EQ(runtime_->RunBatch(bad_batch).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A forward that throws is INTERNAL, and the runtime keeps serving.
  const ScoringInput out_of_vocab = OutOfVocab();
  const ScoringInput* throwing_batch[] = {&out_of_vocab};
  const absl::Status thrown = runtime_->RunBatch(throwing_batch).status();
  EXPECT_EQ(thrown.code(), absl::StatusCode::kInternal);
  // One line naming the error, not the interpreter's traceback.
  EXPECT_EQ(thrown.message(),
            "model forward failed: RuntimeError: index out of range in self")
      << thrown;
  const ScoringInput* good_batch[] = {&(*goldens_)[0].input};
  EXPECT_TRUE(runtime_->RunBatch(good_batch).ok());
}

TEST_F(TorchModelRuntimeTest, PrepareThenRunMatchesRunBatch) {
  std::vector<ScoringInput> inputs;
  for (const Golden& g : *goldens_) inputs.push_back(g.input);
  std::vector<const ScoringInput*> first, second;
  for (size_t i = 0; i < inputs.size(); ++i) {
    inputs[i].attention =
        i % 2 == 0 ? AttentionDetail::kNone : AttentionDetail::kMean;
    (i < inputs.size() / 2 ? first : second).push_back(&inputs[i]);
  }
  auto expected_first = runtime_->RunBatch(first);
  auto expected_second = runtime_->RunBatch(second);
  ASSERT_TRUE(expected_first.ok()) << expected_first.status();
  ASSERT_TRUE(expected_second.ok()) << expected_second.status();

  // As the pipelined servable does: collate the second batch while the
  // first one's forward runs on another thread.
  auto prepared_first = runtime_->Prepare(first);
  ASSERT_TRUE(prepared_first.ok()) << prepared_first.status();
  absl::StatusOr<std::vector<ScoringOutput>> outputs_first;
  std::thread forward([&] { outputs_first = runtime_->Run(**prepared_first); });
  auto prepared_second = runtime_->Prepare(second);
  forward.join();
  ASSERT_TRUE(prepared_second.ok()) << prepared_second.status();
  auto outputs_second = runtime_->Run(**prepared_second);
  ASSERT_TRUE(outputs_first.ok()) << outputs_first.status();
  ASSERT_TRUE(outputs_second.ok()) << outputs_second.status();

  auto expect_same = [](const std::vector<ScoringOutput>& actual,
                        const std::vector<ScoringOutput>& expected) {
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
      const std::string what = "request " + std::to_string(i);
      ExpectNear(actual[i].probabilities, expected[i].probabilities, what);
      ExpectNear(actual[i].text_to_features, expected[i].text_to_features,
                 what);
      ExpectNear(actual[i].features_to_text, expected[i].features_to_text,
                 what);
      EXPECT_EQ(actual[i].text_to_features_shape,
                expected[i].text_to_features_shape);
    }
  };
  expect_same(*outputs_first, *expected_first);
  expect_same(*outputs_second, *expected_second);
}

TEST_F(TorchModelRuntimeTest, PrepareRejectsMalformedInput) {
  ScoringInput few_features = (*goldens_)[0].input;
  few_features.features.pop_back();
  ScoringInput no_tokens = (*goldens_)[0].input;
  no_tokens.token_ids.clear();
  for (const ScoringInput* bad : {&few_features, &no_tokens}) {
    const ScoringInput* batch[] = {&(*goldens_)[1].input, bad};
    EXPECT_EQ(runtime_->Prepare(batch).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // Collation does not look the ids up: the forward fails, INTERNAL.
  const ScoringInput out_of_vocab = OutOfVocab();
  const ScoringInput* throwing_batch[] = {&out_of_vocab};
  auto prepared = runtime_->Prepare(throwing_batch);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(runtime_->Run(**prepared).status().code(),
            absl::StatusCode::kInternal);
  // A batch some other runtime prepared is refused.
  PreparedBatch foreign;
  EXPECT_EQ(runtime_->Run(foreign).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TorchModelRuntimeCreateTest, MissingModelFileIsNotFound) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  config->set_model_file("no-such-model.pt");
  auto runtime = TorchModelRuntime::Create(kBundle, *config, {});
  EXPECT_EQ(runtime.status().code(), absl::StatusCode::kNotFound);
}

// A bundle in a fresh folder for one test: model.pt linked to the real one
// unless `model_pt` gives its bytes; golden.jsonl as given (none if empty).
std::string ScratchBundle(const std::string& golden,
                          const std::string& model_pt = "") {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::path(::testing::TempDir()) /
      (std::string("runtime_bundle_") +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (model_pt.empty()) {
    fs::create_symlink(fs::path(kBundle) / "model.pt", dir / "model.pt");
  } else {
    std::ofstream(dir / "model.pt", std::ios::binary) << model_pt;
  }
  if (!golden.empty()) std::ofstream(dir / "golden.jsonl") << golden;
  return dir.string();
}

// The bundle's golden.jsonl with `edit` applied to each case (by index).
std::string EditedGolden(
    const std::function<void(int, nlohmann::json&)>& edit) {
  std::ifstream in(std::string(kBundle) + "/golden.jsonl");
  std::string out;
  int index = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto json = nlohmann::json::parse(line);
    edit(index++, json);
    out += json.dump() + "\n";
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TorchModelRuntime>> CreateFp32(
    const std::string& bundle, const fusion::v1::ModelConfig& config) {
  TorchRuntimeOptions options;
  options.device = DevicePreference::kCpu;
  options.precision = fusion::v1::RuntimeConfig::PRECISION_FP32;
  return TorchModelRuntime::Create(bundle, config, options);
}

void ExpectHas(const absl::Status& status, const std::string& text) {
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "\"" << text << "\" not in: " << status;
}

TEST(TorchModelRuntimeCreateTest, GoldenAnswersOffTheModelFailTheLoad) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  // One case moved by 0.05: the load names it, with both answers.
  const std::string bundle =
      ScratchBundle(EditedGolden([](int index, nlohmann::json& json) {
        if (index != 7) return;
        auto probs = json["probabilities"].get<std::vector<float>>();
        json["probabilities"] = {probs[0] + 0.05f, probs[1] - 0.05f};
      }));
  auto runtime = CreateFp32(bundle, *config);
  ASSERT_EQ(runtime.status().code(), absl::StatusCode::kFailedPrecondition)
      << runtime.status();
  ExpectHas(runtime.status(), "disagrees with its golden answers");
  ExpectHas(runtime.status(), "golden.jsonl line 8 (golden-007): expected [");
  ExpectHas(runtime.status(), "], got [");
  ExpectHas(runtime.status(), "off by 0.05");
}

TEST(TorchModelRuntimeCreateTest, AGoldenFileThatIsNotJsonFailsTheLoad) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  std::string golden = EditedGolden([](int, nlohmann::json&) {});
  golden.insert(golden.find('\n') + 1, "{\"token_ids\": [2, 3\n");
  auto runtime = CreateFp32(ScratchBundle(golden), *config);
  ASSERT_EQ(runtime.status().code(), absl::StatusCode::kInvalidArgument)
      << runtime.status();
  ExpectHas(runtime.status(), "golden.jsonl:2: ");
}

TEST(TorchModelRuntimeCreateTest, GoldenCasesNotFittingTheConfigFailTheLoad) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  const std::string bundle =
      ScratchBundle(EditedGolden([](int index, nlohmann::json& json) {
        if (index == 3) json["feature_vector"].push_back(1.0);
      }));
  auto runtime = CreateFp32(bundle, *config);
  ASSERT_EQ(runtime.status().code(), absl::StatusCode::kInvalidArgument)
      << runtime.status();
  ExpectHas(runtime.status(), "golden.jsonl line 4 (golden-003) does not fit");
}

TEST(TorchModelRuntimeCreateTest, WithoutAGoldenFileTheLoadGoesOn) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(CreateFp32(ScratchBundle(""), *config).ok());
}

TEST(TorchModelRuntimeCreateTest, ACorruptModelFileFailsTheLoadNamingIt) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  const std::string bundle = ScratchBundle("", "not a zip archive\n");
  auto runtime = CreateFp32(bundle, *config);
  ASSERT_EQ(runtime.status().code(), absl::StatusCode::kInternal)
      << runtime.status();
  ExpectHas(runtime.status(),
            bundle + "/model.pt is not a TorchScript model LibTorch can load");
}

TEST(TorchModelRuntimeCreateTest, AConfigUnlikeTheModelFailsTheWarmUp) {
  auto config = LoadBundleConfig(kBundle);
  ASSERT_TRUE(config.ok());
  config->add_features()->set_name("one_too_many");
  auto runtime = CreateFp32(ScratchBundle(""), *config);
  ASSERT_EQ(runtime.status().code(), absl::StatusCode::kInternal)
      << runtime.status();
  ExpectHas(runtime.status(),
            "failed with config.pbtxt's shapes (128 "
            "max_tokens, 17 features");
  // The error's last line, not LibTorch's traceback.
  EXPECT_EQ(runtime.status().message().find('\n'), std::string::npos)
      << runtime.status();
}

// Runtimes in other precisions, each loaded for its test (a few seconds).
class PrecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = LoadBundleConfig(kBundle);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    goldens_ = ReadGolden();
  }

  absl::StatusOr<std::unique_ptr<TorchModelRuntime>> Create(
      fusion::v1::RuntimeConfig::Precision precision,
      const std::string& bundle = kBundle) {
    TorchRuntimeOptions options;
    options.device = DevicePreference::kCpu;
    options.intra_op_threads = 1;
    options.precision = precision;
    return TorchModelRuntime::Create(bundle, config_, options);
  }

  // The largest probability error over the golden requests, each alone
  // (those of fewer than `below` positions) or all in one padded batch.
  double MaxError(ModelRuntime& runtime, bool alone,
                  int64_t below = std::numeric_limits<int64_t>::max()) {
    std::vector<const ScoringInput*> batch;
    for (const Golden& g : goldens_) batch.push_back(&g.input);
    double error = 0;
    auto check = [&](absl::Span<const ScoringInput* const> part, size_t first) {
      auto outputs = runtime.RunBatch(part);
      EXPECT_TRUE(outputs.ok()) << outputs.status();
      if (!outputs.ok()) return;
      for (size_t i = 0; i < part.size(); ++i) {
        const auto& expected = goldens_[first + i].probabilities;
        const auto& actual = (*outputs)[i].probabilities;
        for (size_t c = 0; c < expected.size(); ++c) {
          error = std::max<double>(error, std::abs(actual[c] - expected[c]));
        }
      }
    };
    if (alone) {
      for (size_t i = 0; i < batch.size(); ++i) {
        const int64_t positions =
            batch[i]->token_ids.size() + batch[i]->features.size();
        if (positions < below) check(absl::MakeConstSpan(&batch[i], 1), i);
      }
    } else {
      check(batch, 0);
    }
    return error;
  }

  fusion::v1::ModelConfig config_;
  std::vector<Golden> goldens_;
};

TEST_F(PrecisionTest, Bf16ScoresEveryGoldenRequestWithinTolerance) {
  auto runtime = Create(fusion::v1::RuntimeConfig::PRECISION_BF16);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  EXPECT_TRUE((*runtime)->precision().bf16);
  EXPECT_EQ((*runtime)->precision().bf16_min_positions, 0);
  const double alone = MaxError(**runtime, /*alone=*/true);
  const double batched = MaxError(**runtime, /*alone=*/false);
  EXPECT_LE(alone, kMaxBf16ProbabilityDelta);
  EXPECT_LE(batched, kMaxBf16ProbabilityDelta);
  // bf16 really ran: fp32 reproduces the golden answers to 1e-5 or so.
  EXPECT_GT(std::max(alone, batched), 1e-4);
  // Attention comes back too, as fp32 values of the right shape.
  ScoringInput input = goldens_[3].input;
  input.attention = AttentionDetail::kPerHead;
  const ScoringInput* one[] = {&input};
  auto outputs = (*runtime)->RunBatch(one);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  EXPECT_EQ((*outputs)[0].text_to_features.size(),
            goldens_[3].text_to_features.size());
  EXPECT_EQ((*outputs)[0].features_to_text.size(),
            goldens_[3].features_to_text.size());
  EXPECT_EQ((*outputs)[0].text_to_features_shape.size(), 3u);
}

TEST_F(PrecisionTest, AutoRunsSmallBatchesInFp32) {
  auto runtime = Create(fusion::v1::RuntimeConfig::PRECISION_AUTO);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  const PrecisionPlan plan = (*runtime)->precision();
  if (!CpuComputesBf16Natively()) {
    EXPECT_FALSE(plan.bf16);
  } else if (plan.bf16) {
    // Requests alone below the crossover run in fp32: exact. Most are
    // (it was 90-250 positions here, a request alone 18-144).
    EXPECT_GT(plan.bf16_min_positions, 0);
    EXPECT_LE(MaxError(**runtime, /*alone=*/true, plan.bf16_min_positions),
              kTolerance);
  }
  EXPECT_LE(MaxError(**runtime, /*alone=*/false), kMaxBf16ProbabilityDelta);
}

TEST_F(PrecisionTest, Bf16OffTheGoldenAnswersFailsTheLoadNamingTheFigure) {
  // fp32 agrees with the golden answers; bf16 cannot within 1e-7.
  TorchRuntimeOptions options;
  options.device = DevicePreference::kCpu;
  options.intra_op_threads = 1;
  options.max_bf16_probability_delta = 1e-7;
  options.precision = fusion::v1::RuntimeConfig::PRECISION_BF16;
  auto runtime = TorchModelRuntime::Create(kBundle, config_, options);
  ASSERT_EQ(runtime.status().code(), absl::StatusCode::kFailedPrecondition)
      << runtime.status();
  EXPECT_NE(runtime.status().message().find("golden probability by up to 0.0"),
            std::string::npos)
      << runtime.status();
  EXPECT_NE(runtime.status().message().find("limit 1e-07"), std::string::npos)
      << runtime.status();
  // AUTO falls back to fp32 instead.
  options.precision = fusion::v1::RuntimeConfig::PRECISION_AUTO;
  auto fallback = TorchModelRuntime::Create(kBundle, config_, options);
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_FALSE((*fallback)->precision().bf16);
}

TEST_F(PrecisionTest, WithoutGoldenAnswersBf16FailsAndAutoStaysFp32) {
  const std::string bundle = ScratchBundle("");
  auto runtime = Create(fusion::v1::RuntimeConfig::PRECISION_BF16, bundle);
  EXPECT_EQ(runtime.status().code(), absl::StatusCode::kFailedPrecondition)
      << runtime.status();
  auto fallback = Create(fusion::v1::RuntimeConfig::PRECISION_AUTO, bundle);
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_FALSE((*fallback)->precision().bf16);
}

TEST_F(PrecisionTest, ConfigPrecisionAppliesWithoutAnOverride) {
  config_.mutable_runtime()->set_precision(
      fusion::v1::RuntimeConfig::PRECISION_BF16);
  TorchRuntimeOptions options;
  options.device = DevicePreference::kCpu;
  options.intra_op_threads = 1;
  auto runtime = TorchModelRuntime::Create(kBundle, config_, options);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  EXPECT_TRUE((*runtime)->precision().bf16);
  options.precision = fusion::v1::RuntimeConfig::PRECISION_FP32;
  auto overridden = TorchModelRuntime::Create(kBundle, config_, options);
  ASSERT_TRUE(overridden.ok()) << overridden.status();
  EXPECT_FALSE((*overridden)->precision().bf16);
}

}  // namespace
}  // namespace fusion::runtime
