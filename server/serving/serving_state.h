// Process-wide lifecycle: loading → ready → (SIGTERM) not ready → draining.
//
// Readiness (HTTP /readyz, gRPC health) and admission of new requests read
// it. Thread-safety: all methods may be called concurrently.
#ifndef FUSION_SERVER_SERVING_SERVING_STATE_H_
#define FUSION_SERVER_SERVING_SERVING_STATE_H_

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "server/serving/model_registry.h"

namespace fusion::serving {

class ServingState {
 public:
  // Models loaded and warmed up; `registry` must outlive this object's use.
  void SetReady(ModelRegistry* registry) { registry_.store(registry); }
  // Before the registry is destroyed: requests and scrapes see none.
  void ClearRegistry() { registry_.store(nullptr); }
  // Shutdown asked for: stop advertising readiness, keep serving.
  void StopAdvertising() { stopping_.store(true); }
  // New requests are refused with UNAVAILABLE from now on.
  void StartDraining() {
    stopping_.store(true);
    draining_.store(true);
  }

  ModelRegistry* registry() const { return registry_.load(); }
  // The registry to route a new request with, or UNAVAILABLE saying why
  // not (loading, draining).
  absl::StatusOr<ModelRegistry*> AdmittingRegistry() const {
    if (draining()) return absl::UnavailableError("server is draining");
    ModelRegistry* registry = registry_.load();
    if (registry == nullptr) {
      return absl::UnavailableError("models are loading");
    }
    return registry;
  }
  bool draining() const { return draining_.load(); }
  // "" when ready (loaded, no shutdown asked), else why not, in one line.
  std::string NotReadyReason() const {
    if (stopping_.load()) return "shutting down";
    if (registry() == nullptr) return "models are loading";
    return "";
  }

 private:
  std::atomic<ModelRegistry*> registry_{nullptr};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_SERVING_STATE_H_
