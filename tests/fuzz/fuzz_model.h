// The model the request fuzz targets send to: the committed bundle's
// config.pbtxt and vocab.txt (models/fusion/1), loaded through the real
// ModelRegistry, scored by FakeModelRuntime (no Torch: the targets reach
// every line of validation, conversion, batching and response building,
// and stay fast). One instance per process, built on first use; a failure
// to build it aborts (a broken fuzz setup must not pass as "no crash").
#ifndef FUSION_TESTS_FUZZ_FUZZ_MODEL_H_
#define FUSION_TESTS_FUZZ_FUZZ_MODEL_H_

#include <memory>

#include "server/serving/model_registry.h"
#include "server/serving/serving_state.h"

namespace fusion::fuzz {

class FuzzModel {
 public:
  // The process's instance; its executor threads run until exit.
  static FuzzModel& Get();

  // Ready and admitting: requests for model "fusion" (or the default "")
  // are routed to version 1.
  const serving::ServingState& state() const { return state_; }
  serving::ModelRegistry& registry() { return *registry_; }

 private:
  FuzzModel() = default;

  std::unique_ptr<serving::ModelRegistry> registry_;
  serving::ServingState state_;
};

}  // namespace fusion::fuzz

#endif  // FUSION_TESTS_FUZZ_FUZZ_MODEL_H_
