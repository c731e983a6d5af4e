#include "server/serving/model_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/common/log.h"
#include "server/runtime/bundle_config.h"
#include "server/serving/version_policy.h"

namespace fusion::serving {
namespace {

// How long an unloading version waits for the requests that hold it before
// it drains regardless (a drained version fails late submissions with
// UNAVAILABLE). Requests finish in milliseconds; this bounds a stuck one.
constexpr absl::Duration kMaxUnloadWait = absl::Seconds(60);
constexpr absl::Duration kUnloadPollInterval = absl::Milliseconds(2);

// The policy of the highest version whose config parses; unset if none.
fusion::v1::VersionPolicy PolicyOf(const std::string& repository,
                                   const std::string& model,
                                   const VersionDirs& dirs) {
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    auto config =
        runtime::LoadBundleConfig(BundleDir(repository, model, it->first));
    if (config.ok()) return config->version_policy();
  }
  return {};
}

}  // namespace

const char* VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return "LOADING";
    case VersionState::kReady:
      return "READY";
    case VersionState::kUnloading:
      return "UNLOADING";
    case VersionState::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

ModelRegistry::ModelRegistry(RegistryOptions options)
    : options_(std::move(options)) {}

ModelRegistry::~ModelRegistry() { DrainAll(); }

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Load(
    RegistryOptions options) {
  auto scan = ScanRepository(options.repository);
  if (!scan.ok()) return scan.status();
  std::vector<std::string> names = options.models;
  if (names.empty()) {
    for (const auto& [name, dirs] : *scan) names.push_back(name);
  } else if (std::find(names.begin(), names.end(), options.default_model) ==
             names.end()) {
    names.push_back(options.default_model);
  }
  // The default model first: its error is the one that stops the start.
  if (!scan->count(options.default_model)) {
    return NoVersionError(options.repository, options.default_model);
  }
  for (const std::string& name : names) {
    if (!scan->count(name)) return NoVersionError(options.repository, name);
  }
  auto registry =
      std::unique_ptr<ModelRegistry>(new ModelRegistry(std::move(options)));
  absl::MutexLock sync(&registry->sync_mu_);
  // The default model first: when it cannot serve, nothing else is loaded.
  std::stable_partition(names.begin(), names.end(), [&](const auto& name) {
    return name == registry->options_.default_model;
  });
  for (const std::string& name : names) {
    const VersionDirs& dirs = scan->at(name);
    const bool is_default = name == registry->options_.default_model;
    absl::Status status = registry->SyncModel(
        name, dirs, is_default ? SyncMode::kStart : SyncMode::kExplicit);
    registry->last_seen_[name] = dirs;
    if (status.ok()) continue;
    if (is_default) return status;
    // Recorded FAILED (logged, counted) like a failed reload; the poller
    // retries it when its files change, LoadModel at once.
    Log(LogLevel::kError, "model '", name, "' cannot serve (", status.message(),
        "); serving the other models without it");
  }
  return registry;
}

bool ModelRegistry::Serves(const std::string& model) const {
  const auto& models = options_.models;
  return models.empty() || model == options_.default_model ||
         std::find(models.begin(), models.end(), model) != models.end();
}

absl::Status ModelRegistry::SyncModel(const std::string& model,
                                      const VersionDirs& dirs, SyncMode mode) {
  const fusion::v1::VersionPolicy policy =
      PolicyOf(options_.repository, model, dirs);
  // Candidates: versions serving now, or loadable now.
  std::set<int64_t> ready, candidates;
  {
    absl::ReaderMutexLock lock(&mu_);
    const auto found = models_.find(model);
    const Model* entry = found == models_.end() ? nullptr : &found->second;
    if (entry != nullptr) {
      for (const auto& [version, v] : entry->versions) {
        if (v.state == VersionState::kReady) ready.insert(version);
      }
    }
    const auto seen = last_seen_.find(model);
    for (const auto& [version, signature] : dirs) {
      if (ready.count(version)) {
        candidates.insert(version);
        continue;
      }
      if (entry != nullptr) {
        if (entry->unloaded_versions.count(version)) continue;
        const auto v = entry->versions.find(version);
        // A failed version is retried once its files change.
        if (v != entry->versions.end() &&
            v->second.state == VersionState::kFailed &&
            v->second.signature == signature) {
          continue;
        }
      }
      // A copy in progress: wait until two scans see the same files.
      if (mode == SyncMode::kPoll &&
          (seen == last_seen_.end() || !seen->second.count(version) ||
           seen->second.at(version) != signature)) {
        continue;
      }
      candidates.insert(version);
    }
  }

  std::vector<std::string> failures;
  std::set<int64_t> attempted;
  std::set<int64_t> wanted;
  // A version that fails drops out of the candidates, and the policy picks
  // again (latest 1 with v3 broken keeps v2), until nothing new is wanted.
  while (true) {
    wanted = ChooseVersions(policy, candidates);
    std::vector<int64_t> missing;
    for (int64_t version : wanted) {
      if (!ready.count(version) && !attempted.count(version)) {
        missing.push_back(version);
      }
    }
    if (missing.empty()) break;
    std::sort(missing.rbegin(), missing.rend());  // latest first
    for (int64_t version : missing) {
      attempted.insert(version);
      absl::Status loaded = LoadVersion(model, version, dirs.at(version));
      if (loaded.ok()) {
        ready.insert(version);
        continue;
      }
      if (mode == SyncMode::kStart) return loaded;
      failures.push_back(std::string(loaded.message()));
      candidates.erase(version);
    }
  }

  bool wanted_ready = false;
  for (int64_t version : wanted) wanted_ready |= ready.count(version) > 0;
  if (wanted_ready) {
    for (int64_t version : ready) {
      if (!wanted.count(version)) Unload(model, version);
    }
  } else if (!ready.empty()) {
    Log(LogLevel::kWarning, model, ": the repository holds no version that ",
        "can serve; keeping v", *ready.rbegin(), " serving");
  }
  {
    // Failed versions whose directory is gone are forgotten.
    absl::MutexLock lock(&mu_);
    auto& versions = models_[model].versions;
    for (auto it = versions.begin(); it != versions.end();) {
      it = it->second.state == VersionState::kFailed && !dirs.count(it->first)
               ? versions.erase(it)
               : std::next(it);
    }
  }
  if (failures.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrJoin(failures, "; "));
}

absl::Status ModelRegistry::LoadVersion(const std::string& model,
                                        int64_t version,
                                        const BundleSignature& signature) {
  const std::string dir = BundleDir(options_.repository, model, version);
  {
    absl::MutexLock lock(&mu_);
    Version& v = models_[model].versions[version];
    v = Version{};
    v.signature = signature;
  }
  Publish(model, version);
  Log(LogLevel::kInfo, "loading ", dir);
  const absl::Time start = absl::Now();
  absl::StatusOr<LoadedVersion> loaded = options_.loader(dir, model, version);
  const absl::Duration load_time = absl::Now() - start;
  {
    absl::MutexLock lock(&mu_);
    Version& v = models_[model].versions[version];
    v.load_time = load_time;
    if (loaded.ok()) {
      v.state = VersionState::kReady;
      v.servable = std::move(loaded->servable);
      v.warmup_time = loaded->warmup_time;
    } else {
      v.state = VersionState::kFailed;
      v.reason = std::string(loaded.status().message());
    }
  }
  Publish(model, version);
  if (!loaded.ok()) {
    Log(LogLevel::kError, dir, ": load failed after ",
        absl::FormatDuration(load_time), ": ", loaded.status().message());
    return absl::Status(loaded.status().code(),
                        absl::StrCat(dir, ": ", loaded.status().message()));
  }
  Log(LogLevel::kInfo, "loaded ", dir, " in ", absl::FormatDuration(load_time),
      " (warm-up ", absl::FormatDuration(loaded->warmup_time), "); serving ",
      model, " v", version);
  return absl::OkStatus();
}

void ModelRegistry::Unload(const std::string& model, int64_t version) {
  std::shared_ptr<Servable> servable;
  {
    absl::MutexLock lock(&mu_);
    Version& v = models_[model].versions[version];
    if (v.state != VersionState::kReady) return;
    v.state = VersionState::kUnloading;
    servable = v.servable;
  }
  Publish(model, version);
  const absl::Time start = absl::Now();
  // The table's copy and this one: any other is a request in flight (found
  // before the switch, queued or computing). Wait for them to finish.
  while (servable.use_count() > 2 && absl::Now() - start < kMaxUnloadWait) {
    absl::SleepFor(kUnloadPollInterval);
  }
  servable->Drain();
  {
    absl::MutexLock lock(&mu_);
    models_[model].versions.erase(version);
  }
  servable.reset();  // the last reference: frees the model's memory
  Log(LogLevel::kInfo, "unloaded ", model, " v", version, " after ",
      absl::FormatDuration(absl::Now() - start));
  if (options_.on_unloaded) options_.on_unloaded(model, version);
}

void ModelRegistry::Publish(const std::string& model, int64_t version) {
  if (!options_.on_version_state) return;
  VersionStatus status;
  {
    absl::ReaderMutexLock lock(&mu_);
    const auto& versions = models_.at(model).versions;
    const auto it = versions.find(version);
    if (it == versions.end()) return;
    const Version& v = it->second;
    status = {version, v.state, v.reason, v.load_time, v.warmup_time};
  }
  options_.on_version_state(model, status);
}

absl::StatusOr<std::shared_ptr<Servable>> ModelRegistry::Find(
    const std::string& model, const std::string& version) const {
  const std::string& name = model.empty() ? options_.default_model : model;
  absl::ReaderMutexLock lock(&mu_);
  const auto found = models_.find(name);
  if (found == models_.end() || found->second.unloaded ||
      found->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  }
  const auto& versions = found->second.versions;
  if (version.empty()) {
    for (const auto& [number, v] : versions) {
      if (v.state == VersionState::kReady) return v.servable;
    }
    const Version& latest = versions.begin()->second;
    if (latest.state == VersionState::kFailed) {
      return absl::FailedPreconditionError(
          absl::StrCat("model '", name, "' version '", versions.begin()->first,
                       "' failed to load: ", latest.reason));
    }
    return absl::UnavailableError(
        absl::StrCat("model '", name, "' has no ready version yet"));
  }
  int64_t number = 0;
  const auto it = absl::SimpleAtoi(version, &number) ? versions.find(number)
                                                     : versions.end();
  if (it == versions.end()) {
    return absl::NotFoundError(
        absl::StrCat("model '", name, "' has no version '", version, "'"));
  }
  switch (it->second.state) {
    case VersionState::kReady:
      return it->second.servable;
    case VersionState::kFailed:
      return absl::FailedPreconditionError(
          absl::StrCat("model '", name, "' version '", version,
                       "' failed to load: ", it->second.reason));
    case VersionState::kLoading:
    case VersionState::kUnloading:
      break;
  }
  return absl::UnavailableError(absl::StrCat(
      "model '", name, "' version '", version, "' is ",
      it->second.state == VersionState::kLoading ? "loading" : "unloading"));
}

ModelStatus ModelRegistry::StatusLocked(const std::string& name,
                                        const Model& model) const {
  ModelStatus status;
  status.name = name;
  status.is_default = name == options_.default_model;
  for (const auto& [version, v] : model.versions) {
    status.versions.push_back(
        {version, v.state, v.reason, v.load_time, v.warmup_time});
  }
  return status;
}

std::vector<ModelStatus> ModelRegistry::ListModels() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<ModelStatus> models;
  for (const auto& [name, model] : models_) {
    models.push_back(StatusLocked(name, model));
  }
  return models;
}

absl::StatusOr<ModelStatus> ModelRegistry::GetModelStatus(
    const std::string& model) const {
  const std::string& name = model.empty() ? options_.default_model : model;
  absl::ReaderMutexLock lock(&mu_);
  const auto found = models_.find(name);
  if (found == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  }
  return StatusLocked(name, found->second);
}

void ModelRegistry::ForEachServable(
    const std::function<void(const Servable&)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, model] : models_) {
    for (const auto& [version, v] : model.versions) {
      if (v.servable) fn(*v.servable);
    }
  }
}

absl::Status ModelRegistry::Sync() {
  absl::MutexLock sync(&sync_mu_);
  auto scan = ScanRepository(options_.repository);
  if (!scan.ok()) return scan.status();
  std::vector<std::string> names;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, dirs] : *scan) {
      const auto found = models_.find(name);
      if (Serves(name) && (found == models_.end() || !found->second.unloaded)) {
        names.push_back(name);
      }
    }
    // A served model whose directory is gone: its failed versions are
    // forgotten; its last ready one keeps serving (see SyncModel).
    for (const auto& [name, model] : models_) {
      if (!scan->count(name) && !model.unloaded) names.push_back(name);
    }
  }
  std::vector<std::string> failures;
  for (const std::string& name : names) {
    const auto dirs = scan->find(name);
    absl::Status status =
        SyncModel(name, dirs == scan->end() ? VersionDirs{} : dirs->second,
                  SyncMode::kPoll);
    if (!status.ok()) failures.push_back(std::string(status.message()));
  }
  last_seen_ = std::move(*scan);
  if (failures.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrJoin(failures, "; "));
}

absl::Status ModelRegistry::LoadModel(const std::string& model) {
  absl::MutexLock sync(&sync_mu_);
  const VersionDirs dirs = ScanModel(options_.repository, model);
  if (dirs.empty()) {
    return absl::NotFoundError(absl::StrCat("no version of model '", model,
                                            "' in ", options_.repository));
  }
  {
    absl::MutexLock lock(&mu_);
    Model& entry = models_[model];
    entry.unloaded = false;
    entry.unloaded_versions.clear();
  }
  absl::Status status = SyncModel(model, dirs, SyncMode::kExplicit);
  last_seen_[model] = dirs;
  return status;
}

absl::Status ModelRegistry::UnloadModel(const std::string& model,
                                        const std::string& version) {
  absl::MutexLock sync(&sync_mu_);
  std::set<int64_t> ready;
  {
    absl::MutexLock lock(&mu_);
    const auto found = models_.find(model);
    if (found != models_.end()) {
      for (const auto& [number, v] : found->second.versions) {
        if (v.state == VersionState::kReady) ready.insert(number);
      }
    }
    if (ready.empty()) {
      return absl::NotFoundError(
          absl::StrCat("model '", model, "' has no loaded version"));
    }
    if (version.empty()) {
      if (model == options_.default_model) {
        return absl::FailedPreconditionError(
            absl::StrCat("'", model,
                         "' is the default model (--model): it cannot be "
                         "unloaded, only its versions replaced"));
      }
      found->second.unloaded = true;
    } else {
      int64_t number = 0;
      if (!absl::SimpleAtoi(version, &number) || !ready.count(number)) {
        return absl::NotFoundError(absl::StrCat(
            "model '", model, "' has no loaded version '", version, "'"));
      }
      if (model == options_.default_model && ready.size() == 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "version ", version, " is the default model's only ready one"));
      }
      ready = {number};
      found->second.unloaded_versions.insert(number);
    }
  }
  for (int64_t number : ready) Unload(model, number);
  return absl::OkStatus();
}

void ModelRegistry::DrainAll() {
  std::vector<std::shared_ptr<Servable>> servables;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, model] : models_) {
      for (const auto& [version, v] : model.versions) {
        if (v.servable) servables.push_back(v.servable);
      }
    }
  }
  for (const auto& servable : servables) servable->Drain();
}

}  // namespace fusion::serving
