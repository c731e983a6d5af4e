// For tests of the layers above the registry (API, HTTP routes): a model
// repository on disk, `<dir>/m/1/`, holding a given config.pbtxt (and any
// other files), loaded into a ModelRegistry whose one version runs on
// FakeModelRuntime with the vocab [PAD] [UNK] [CLS] [SEP] hello. The
// directory is removed with the object.
#ifndef FUSION_SERVER_SERVING_FAKE_REPOSITORY_H_
#define FUSION_SERVER_SERVING_FAKE_REPOSITORY_H_

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"
#include "server/serving/model_registry.h"

namespace fusion::serving {

class FakeRepository {
 public:
  struct Options {
    std::string config_pbtxt;                  // of model "m" version 1
    std::map<std::string, std::string> files;  // more files of the bundle
    ServingObserver* observer = nullptr;       // optional
  };

  // `dir` is created afresh (removed first if present).
  static absl::StatusOr<std::unique_ptr<FakeRepository>> Create(
      const std::filesystem::path& dir, Options options) {
    std::unique_ptr<FakeRepository> repo(new FakeRepository(dir));
    std::filesystem::remove_all(dir);
    const std::filesystem::path bundle = dir / "m" / "1";
    std::filesystem::create_directories(bundle);
    std::ofstream(bundle / "config.pbtxt") << options.config_pbtxt;
    for (const auto& [name, text] : options.files) {
      std::ofstream(bundle / name) << text;
    }
    RegistryOptions registry;
    registry.repository = dir.string();
    registry.default_model = "m";
    registry.loader = [fake = &repo->fake_, observer = options.observer](
                          const std::string& bundle_dir, const std::string&,
                          int64_t) -> absl::StatusOr<LoadedVersion> {
      auto config = runtime::LoadBundleConfig(bundle_dir);
      if (!config.ok()) return config.status();
      auto tokenizer = text::WordPieceTokenizer::Create(
          {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"});
      if (!tokenizer.ok()) return tokenizer.status();
      auto runtime = std::make_unique<runtime::FakeModelRuntime>();
      *fake = runtime.get();
      auto servable = Servable::Create(*config, std::move(runtime),
                                       std::move(*tokenizer), observer);
      if (!servable.ok()) return servable.status();
      return LoadedVersion{std::shared_ptr<Servable>(std::move(*servable)),
                           absl::ZeroDuration()};
    };
    auto loaded = ModelRegistry::Load(std::move(registry));
    if (!loaded.ok()) return loaded.status();
    repo->registry_ = std::move(*loaded);
    return repo;
  }

  ~FakeRepository() {
    registry_.reset();
    std::filesystem::remove_all(dir_);
  }

  ModelRegistry& registry() { return *registry_; }
  // The runtime of m v1 (owned by its servable).
  runtime::FakeModelRuntime& fake() { return *fake_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit FakeRepository(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path dir_;
  runtime::FakeModelRuntime* fake_ = nullptr;
  std::unique_ptr<ModelRegistry> registry_;
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_FAKE_REPOSITORY_H_
