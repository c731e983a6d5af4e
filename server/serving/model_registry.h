// The models and versions this server serves, kept in step with a model
// repository laid out as `<repository>/<model>/<numeric version>/`.
//
// A version goes LOADING (loaded and warmed up beside the versions serving)
// → READY (routable) → UNLOADING (no longer routable; its queued and
// in-flight requests finish) → gone, its memory freed; or LOADING → FAILED,
// which leaves the versions serving untouched. Which versions serve is the
// model's version policy (version_policy.h) applied to what the repository
// holds, with two guards: a version whose files are still changing is not
// loaded yet (a copy in progress), and a model never loses its last READY
// version to a rescan (only UnloadModel removes a model).
//
// Loading is delegated to a ServableLoader, so this file (and its tests)
// never depend on Torch. Thread-safety: all methods may be called
// concurrently; repository changes (Sync, LoadModel, UnloadModel) run one at
// a time, and Find never waits for them.
#ifndef FUSION_SERVER_SERVING_MODEL_REGISTRY_H_
#define FUSION_SERVER_SERVING_MODEL_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/serving/repository_scan.h"
#include "server/serving/servable.h"

namespace fusion::serving {

enum class VersionState { kLoading, kReady, kUnloading, kFailed };
const char* VersionStateName(VersionState state);

struct VersionStatus {
  int64_t version = 0;
  VersionState state = VersionState::kLoading;
  std::string reason;          // why FAILED
  absl::Duration load_time;    // start to ready, warm-up included
  absl::Duration warmup_time;  // of which warm-up
};

struct ModelStatus {
  std::string name;
  bool is_default = false;
  std::vector<VersionStatus> versions;  // latest first
};

// A version loaded and warmed up, not yet serving.
struct LoadedVersion {
  std::shared_ptr<Servable> servable;
  absl::Duration warmup_time;
};
using ServableLoader = std::function<absl::StatusOr<LoadedVersion>(
    const std::string& bundle_dir, const std::string& model, int64_t version)>;

struct RegistryOptions {
  std::string repository = "models";
  std::string default_model;  // must load at start, and cannot be unloaded
  // Models to serve; empty: every model the repository holds (now or later).
  std::vector<std::string> models;
  ServableLoader loader;
  // Called on every state change (not under the registry's lock); optional.
  std::function<void(const std::string& model, const VersionStatus& status)>
      on_version_state;
  // Called when a version has been unloaded and freed; optional.
  std::function<void(const std::string& model, int64_t version)> on_unloaded;
};

class ModelRegistry {
 public:
  // Loads what the repository holds for the models to serve, following each
  // model's version policy. The default model must load whole: any of its
  // wanted versions failing fails the start, with the loader's error
  // prefixed with the bundle directory. Another model's version that fails
  // is recorded FAILED (on_version_state, logged) and its policy picks
  // again, as on a rescan: a broken model in a shared repository must not
  // keep every server from starting. NOT_FOUND for no repository, no
  // bundles, or a named model (default included) absent.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Load(
      RegistryOptions options);
  ~ModelRegistry();  // drains every version

  // `model` empty: the default model; `version` empty: its latest READY
  // version. NOT_FOUND: unknown or unloaded model or version; UNAVAILABLE: the
  // version is loading or unloading; FAILED_PRECONDITION: it failed to load.
  absl::StatusOr<std::shared_ptr<Servable>> Find(
      const std::string& model, const std::string& version) const;

  // Every model known (loaded, loading, failed or unloaded), by name.
  std::vector<ModelStatus> ListModels() const;
  // NOT_FOUND when unknown; `model` empty: the default model.
  absl::StatusOr<ModelStatus> GetModelStatus(const std::string& model) const;
  const std::string& default_model() const { return options_.default_model; }

  // Calls `fn` on every READY or UNLOADING version, under a reader lock.
  void ForEachServable(const std::function<void(const Servable&)>& fn) const;

  // The repository poller's rescan: new models and versions whose files
  // have not changed since the previous Sync are loaded, the policy is
  // applied. Models unloaded by UnloadModel are skipped. Load failures are
  // recorded (FAILED) and returned, joined; they are not retried until the
  // version's files change.
  absl::Status Sync();
  // Rescans one model now (files need not have settled) and applies its
  // policy; serves it again if UnloadModel had removed it. NOT_FOUND: no
  // such model directory; FAILED_PRECONDITION: a version failed to load.
  absl::Status LoadModel(const std::string& model);
  // Unloads `version` of `model` (empty: every version), after its requests
  // finish. FAILED_PRECONDITION: the default model's last READY version;
  // NOT_FOUND: nothing loaded by that name or version.
  absl::Status UnloadModel(const std::string& model,
                           const std::string& version);

  // Graceful shutdown: every version stops accepting and computes what it
  // has queued. Repository changes must have stopped.
  void DrainAll();

 private:
  struct Version {
    VersionState state = VersionState::kLoading;
    std::shared_ptr<Servable> servable;  // READY and UNLOADING only
    std::string reason;
    absl::Duration load_time, warmup_time;
    BundleSignature signature;  // the files it was loaded (or failed) from
  };
  struct Model {
    std::map<int64_t, Version, std::greater<int64_t>> versions;  // latest 1st
    bool unloaded = false;                // by UnloadModel, until LoadModel
    std::set<int64_t> unloaded_versions;  // likewise, one by one
  };
  enum class SyncMode { kStart, kPoll, kExplicit };

  explicit ModelRegistry(RegistryOptions options);
  bool Serves(const std::string& model) const;
  absl::Status SyncModel(const std::string& model, const VersionDirs& dirs,
                         SyncMode mode) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  absl::Status LoadVersion(const std::string& model, int64_t version,
                           const BundleSignature& signature)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  void Unload(const std::string& model, int64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  void Publish(const std::string& model, int64_t version)
      ABSL_LOCKS_EXCLUDED(mu_);
  ModelStatus StatusLocked(const std::string& name, const Model& model) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const RegistryOptions options_;
  // Serialises repository changes; held for whole loads and unloads.
  absl::Mutex sync_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // What each Sync saw, to load only versions whose files have settled.
  std::map<std::string, VersionDirs> last_seen_ ABSL_GUARDED_BY(sync_mu_);
  // Guards the routing table; held only briefly (Find takes it shared).
  mutable absl::Mutex mu_;
  std::map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_MODEL_REGISTRY_H_
