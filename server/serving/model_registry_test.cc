#include "server/serving/model_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"
#include "server/serving/version_policy.h"

namespace fusion::serving {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kWait = absl::Seconds(10);

// A repository on disk whose bundles hold only config.pbtxt (and, to make a
// version fail, a file named "corrupt"); the loader builds each version
// over FakeModelRuntime and counts its loads.
class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::path(::testing::TempDir()) /
        absl::StrCat(
            "registry_test_",
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    registry_.reset();
    fs::remove_all(root_);
  }

  void AddVersion(const std::string& model, int64_t version,
                  const std::string& policy = "") {
    const fs::path dir = root_ / model / std::to_string(version);
    fs::create_directories(dir);
    std::ofstream(dir / "config.pbtxt")
        << "name: '" << model << "' version: " << version
        << " classes: 'a' classes: 'b' max_tokens: 16 attention_heads: 2 "
           "features { name: 'x' } batching { instance_count: 1 } "
        << policy;
  }
  void Corrupt(const std::string& model, int64_t version,
               const std::string& text = "garbage") {
    std::ofstream(root_ / model / std::to_string(version) / "corrupt") << text;
  }

  RegistryOptions Options(const std::string& default_model = "m") {
    RegistryOptions options;
    options.repository = root_.string();
    options.default_model = default_model;
    options.loader = [this](const std::string& dir, const std::string& model,
                            int64_t version) -> absl::StatusOr<LoadedVersion> {
      ++loads_[absl::StrCat(model, "/", version)];
      if (fs::exists(fs::path(dir) / "corrupt")) {
        return absl::InternalError("model file is corrupt");
      }
      auto config = runtime::LoadBundleConfig(dir);
      if (!config.ok()) return config.status();
      auto tokenizer = text::WordPieceTokenizer::Create(
          {"[PAD]", "[UNK]", "[CLS]", "[SEP]"});
      if (!tokenizer.ok()) return tokenizer.status();
      auto servable = Servable::Create(
          *config, std::make_unique<runtime::FakeModelRuntime>(),
          std::move(*tokenizer));
      if (!servable.ok()) return servable.status();
      return LoadedVersion{std::shared_ptr<Servable>(std::move(*servable)),
                           absl::Milliseconds(1)};
    };
    return options;
  }

  void Load(RegistryOptions options) {
    auto registry = ModelRegistry::Load(std::move(options));
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
  }

  // The version Find routes an unversioned request to, or -1.
  int64_t Routed(const std::string& model = "") {
    auto servable = registry_->Find(model, "");
    return servable.ok() ? (*servable)->config().version() : -1;
  }

  std::map<int64_t, VersionState> States(const std::string& model = "m") {
    std::map<int64_t, VersionState> states;
    auto status = registry_->GetModelStatus(model);
    if (status.ok()) {
      for (const auto& v : status->versions) states[v.version] = v.state;
    }
    return states;
  }

  fs::path root_;
  std::map<std::string, std::atomic<int>> loads_;
  std::unique_ptr<ModelRegistry> registry_;
};

TEST(VersionPolicyTest, PicksWhatEachPolicySays) {
  const std::set<int64_t> versions = {1, 2, 5};
  fusion::v1::VersionPolicy policy;
  EXPECT_EQ(ChooseVersions(policy, versions), (std::set<int64_t>{5}));
  policy.mutable_latest()->set_num_versions(2);
  EXPECT_EQ(ChooseVersions(policy, versions), (std::set<int64_t>{2, 5}));
  policy.mutable_latest()->set_num_versions(9);
  EXPECT_EQ(ChooseVersions(policy, versions), versions);
  policy.mutable_all();
  EXPECT_EQ(ChooseVersions(policy, versions), versions);
  policy.mutable_specific()->add_versions(1);
  policy.mutable_specific()->add_versions(3);
  EXPECT_EQ(ChooseVersions(policy, versions), (std::set<int64_t>{1}));
  EXPECT_TRUE(ChooseVersions(policy, {}).empty());
}

TEST_F(RegistryTest, ServesOnlyTheLatestVersionByDefault) {
  AddVersion("m", 1);
  AddVersion("m", 2);
  Load(Options());
  EXPECT_EQ(Routed(), 2);
  EXPECT_EQ(States(),
            (std::map<int64_t, VersionState>{{2, VersionState::kReady}}));
  EXPECT_EQ(registry_->Find("m", "1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(loads_["m/1"], 0);
}

TEST_F(RegistryTest, LatestTwoKeepsTwoAndAnUnversionedRequestGetsTheNewest) {
  AddVersion("m", 1);
  AddVersion("m", 2);
  AddVersion("m", 3, "version_policy { latest { num_versions: 2 } }");
  Load(Options());
  EXPECT_EQ(Routed(), 3);
  auto v2 = registry_->Find("m", "2");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ((*v2)->config().version(), 2);
  EXPECT_EQ(registry_->Find("m", "1").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, SpecificVersionsLoadOnlyThoseListed) {
  AddVersion("m", 1);
  AddVersion("m", 2);
  AddVersion("m", 3, "version_policy { specific { versions: [1, 3] } }");
  Load(Options());
  EXPECT_EQ(States(),
            (std::map<int64_t, VersionState>{{1, VersionState::kReady},
                                             {3, VersionState::kReady}}));
  EXPECT_EQ(registry_->Find("m", "2").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, ANewVersionLoadsOnceItsFilesSettleAndReplacesTheOld) {
  AddVersion("m", 1);
  Load(Options());
  AddVersion("m", 2);
  ASSERT_TRUE(registry_->Sync().ok());  // first sight: may still be copying
  EXPECT_EQ(loads_["m/2"], 0);
  EXPECT_EQ(Routed(), 1);
  ASSERT_TRUE(registry_->Sync().ok());  // unchanged since: loaded
  EXPECT_EQ(loads_["m/2"], 1);
  EXPECT_EQ(Routed(), 2);
  EXPECT_EQ(States(),
            (std::map<int64_t, VersionState>{{2, VersionState::kReady}}));
}

TEST_F(RegistryTest, AFileStillChangingDefersTheLoad) {
  AddVersion("m", 1);
  Load(Options());
  AddVersion("m", 2);
  ASSERT_TRUE(registry_->Sync().ok());
  Corrupt("m", 2, "");  // a new file appears between the scans
  fs::remove(root_ / "m" / "2" / "corrupt");
  std::ofstream(root_ / "m" / "2" / "vocab.txt") << "[PAD]\n";
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(loads_["m/2"], 0);
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(loads_["m/2"], 1);
}

TEST_F(RegistryTest, ABrokenVersionFailsAndTheOldOneKeepsServing) {
  AddVersion("m", 2);
  Load(Options());
  AddVersion("m", 3);
  Corrupt("m", 3);
  ASSERT_TRUE(registry_->Sync().ok());
  absl::Status synced = registry_->Sync();
  EXPECT_EQ(synced.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(synced.message().find("corrupt"), std::string::npos) << synced;
  EXPECT_EQ(Routed(), 2);
  EXPECT_EQ(States(),
            (std::map<int64_t, VersionState>{{3, VersionState::kFailed},
                                             {2, VersionState::kReady}}));
  auto v3 = registry_->Find("m", "3");
  EXPECT_EQ(v3.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(v3.status().message().find("failed to load"), std::string::npos);
  // Not retried while its files are unchanged...
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(loads_["m/3"], 1);
  // ...retried once they change (and settle).
  fs::remove(root_ / "m" / "3" / "corrupt");
  ASSERT_TRUE(registry_->Sync().ok());
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(loads_["m/3"], 2);
  EXPECT_EQ(Routed(), 3);
}

TEST_F(RegistryTest, UnloadingWaitsForTheRequestsThatHoldTheVersion) {
  AddVersion("m", 1);
  Load(Options());
  auto held = registry_->Find("m", "");  // a request in flight on v1
  ASSERT_TRUE(held.ok());
  AddVersion("m", 2);
  ASSERT_TRUE(registry_->Sync().ok());
  absl::Notification switched;
  std::thread sync([&] {
    EXPECT_TRUE(registry_->Sync().ok());
    switched.Notify();
  });
  // v2 serves at once; v1 waits for the request.
  const absl::Time give_up = absl::Now() + kWait;
  while (Routed() != 2 && absl::Now() < give_up)
    absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(Routed(), 2);
  EXPECT_FALSE(
      switched.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  EXPECT_EQ(States()[1], VersionState::kUnloading);
  EXPECT_EQ(registry_->Find("m", "1").status().code(),
            absl::StatusCode::kUnavailable);
  held->reset();  // the request completes
  EXPECT_TRUE(switched.WaitForNotificationWithTimeout(kWait));
  sync.join();
  EXPECT_EQ(States(),
            (std::map<int64_t, VersionState>{{2, VersionState::kReady}}));
}

TEST_F(RegistryTest, NoRescanLeavesAModelWithoutAServingVersion) {
  AddVersion("m", 1);
  Load(Options());
  fs::remove_all(root_ / "m" / "1");
  ASSERT_TRUE(registry_->Sync().ok());
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(Routed(), 1);
}

TEST_F(RegistryTest, UnloadModelStaysUnloadedUntilLoadModel) {
  AddVersion("m", 1);
  AddVersion("other", 1);
  Load(Options());
  EXPECT_EQ(registry_->UnloadModel("m", "").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(registry_->UnloadModel("nope", "").code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(registry_->UnloadModel("other", "").ok());
  EXPECT_EQ(registry_->Find("other", "").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(registry_->Sync().ok());
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(Routed("other"), -1);
  EXPECT_EQ(loads_["other/1"], 1);
  ASSERT_TRUE(registry_->LoadModel("other").ok());
  EXPECT_EQ(Routed("other"), 1);
  EXPECT_EQ(registry_->LoadModel("absent").code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, LoadModelReportsAFailureAndKeepsTheServingVersion) {
  AddVersion("m", 1);
  Load(Options());
  AddVersion("m", 2);
  Corrupt("m", 2);
  absl::Status loaded = registry_->LoadModel("m");  // no settling wait
  EXPECT_EQ(loaded.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.message().find("corrupt"), std::string::npos) << loaded;
  EXPECT_EQ(Routed(), 1);
}

TEST_F(RegistryTest, ABrokenVersionAtStartFailsTheStart) {
  AddVersion("m", 1);
  Corrupt("m", 1);
  auto registry = ModelRegistry::Load(Options());
  ASSERT_FALSE(registry.ok());
  EXPECT_NE(registry.status().message().find((root_ / "m" / "1").string()),
            std::string::npos)
      << registry.status();
}

TEST_F(RegistryTest, AnotherModelBrokenAtStartIsFailedAndTheRestServe) {
  AddVersion("m", 1);
  AddVersion("broken", 1);
  Corrupt("broken", 1);
  AddVersion("fine", 2);
  std::vector<std::string> failed;
  RegistryOptions options = Options();
  options.on_version_state = [&failed](const std::string& model,
                                       const VersionStatus& status) {
    if (status.state == VersionState::kFailed) {
      failed.push_back(
          absl::StrCat(model, "/", status.version, ": ", status.reason));
    }
  };
  Load(std::move(options));
  EXPECT_EQ(Routed(), 1);
  EXPECT_EQ(Routed("fine"), 2);
  EXPECT_EQ(States("broken"),
            (std::map<int64_t, VersionState>{{1, VersionState::kFailed}}));
  EXPECT_EQ(failed,
            std::vector<std::string>{"broken/1: model file is corrupt"});
  auto found = registry_->Find("broken", "");
  EXPECT_EQ(found.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(found.status().message().find("model file is corrupt"),
            std::string::npos)
      << found.status();
  // Not retried until its files change; then it serves.
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(loads_["broken/1"], 1);
  fs::remove(root_ / "broken" / "1" / "corrupt");
  ASSERT_TRUE(registry_->Sync().ok());  // seen changed once: settling
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(Routed("broken"), 1);
}

TEST_F(RegistryTest, AnotherModelsBrokenLatestVersionFallsBackAtStart) {
  AddVersion("m", 1);
  AddVersion("other", 1);
  AddVersion("other", 2);
  Corrupt("other", 2);
  Load(Options());
  EXPECT_EQ(Routed("other"), 1);
  EXPECT_EQ(States("other"),
            (std::map<int64_t, VersionState>{{2, VersionState::kFailed},
                                             {1, VersionState::kReady}}));
}

TEST_F(RegistryTest, TheDefaultModelBrokenFailsTheStartBeforeOthersLoad) {
  AddVersion("a_model", 1);  // sorts before "m"
  AddVersion("m", 1);
  Corrupt("m", 1);
  auto registry = ModelRegistry::Load(Options());
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(loads_["a_model/1"], 0);
}

TEST_F(RegistryTest, ModelsNotNamedAreNeitherLoadedNorPickedUpLater) {
  AddVersion("m", 1);
  AddVersion("other", 1);
  RegistryOptions options = Options();
  options.models = {"m"};
  Load(std::move(options));
  AddVersion("third", 1);
  ASSERT_TRUE(registry_->Sync().ok());
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(loads_["other/1"], 0);
  EXPECT_EQ(loads_["third/1"], 0);
  EXPECT_EQ(registry_->ListModels().size(), 1u);
}

TEST_F(RegistryTest, NewModelsArePickedUpWhenAllAreServed) {
  AddVersion("m", 1);
  Load(Options());
  AddVersion("third", 4);
  ASSERT_TRUE(registry_->Sync().ok());
  ASSERT_TRUE(registry_->Sync().ok());
  EXPECT_EQ(Routed("third"), 4);
}

TEST_F(RegistryTest, MissingDefaultModelFailsTheStart) {
  AddVersion("other", 1);
  auto registry = ModelRegistry::Load(Options("m"));
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(registry.status().message().find("no directory"), std::string::npos)
      << registry.status();
}

TEST_F(RegistryTest, AVersionDirectoryWithoutConfigIsNamedInTheError) {
  fs::create_directories(root_ / "m" / "1");
  std::ofstream(root_ / "m" / "1" / "model.pt") << "weights";
  auto registry = ModelRegistry::Load(Options("m"));
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kNotFound);
  const std::string want = (root_ / "m" / "1" / "config.pbtxt").string();
  EXPECT_NE(registry.status().message().find("missing " + want),
            std::string::npos)
      << registry.status();
}

TEST_F(RegistryTest, AModelDirectoryWithoutVersionsSaysWhatIsExpected) {
  fs::create_directories(root_ / "m" / "latest");
  auto registry = ModelRegistry::Load(Options("m"));
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(registry.status().message().find("<version>/config.pbtxt"),
            std::string::npos)
      << registry.status();
}

}  // namespace
}  // namespace fusion::serving
