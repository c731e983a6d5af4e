// ModelRuntime backed by a TorchScript module (LibTorch 1.13 CPU or 2.x CUDA).
//
// Torch headers stay inside the .cc: including this header costs nothing.
// Thread-safety: as ModelRuntime; Prepare and Run may be called from several
// threads at once (the TorchScript module's forward is re-entrant under
// InferenceMode).
#ifndef FUSION_SERVER_RUNTIME_TORCH_MODEL_RUNTIME_H_
#define FUSION_SERVER_RUNTIME_TORCH_MODEL_RUNTIME_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "fusion/v1/model_config.pb.h"
#include "server/runtime/model_runtime.h"
#include "server/runtime/precision.h"

namespace fusion::runtime {

enum class DevicePreference { kAuto, kCpu, kCuda };

struct TorchRuntimeOptions {
  DevicePreference device = DevicePreference::kAuto;
  // LibTorch intra-op threads per forward, as SetProcessThreads set them
  // for the process (reported by intra_op_threads(); 0 reads as 1).
  int intra_op_threads = 1;
  // Unset: config.runtime().precision() (see precision.h).
  std::optional<fusion::v1::RuntimeConfig::Precision> precision;
  // How far bf16 may move a golden probability (tests set it lower).
  double max_bf16_probability_delta = kMaxBf16ProbabilityDelta;
};

class TorchModelRuntime final : public ModelRuntime {
 public:
  // Loads `<bundle_dir>/<config.model_file()>`, moves it to the chosen
  // device and runs config.runtime().warmup_iterations() forwards. When the
  // bundle has a golden.jsonl (golden_file.h), scores it in fp32, each
  // request alone and all in one padded batch: every answer must be within
  // kMaxFp32GoldenDelta of the file's (1.6 s for the 50 of
  // models/fusion/1 on 2 busy CPUs); without one, logs a warning. When bf16 is
  // tried (precision.h), loads a second copy with bf16 matmul weights,
  // scores the golden requests with it and, under AUTO, times both
  // precisions to find the batch size from which bf16 is faster (1.5 s
  // more on a 2-CPU EPYC).
  // Errors, each naming the file: NOT_FOUND (no model file),
  // INVALID_ARGUMENT (golden.jsonl malformed or not fitting the config),
  // FAILED_PRECONDITION (cuda asked for but absent; the fp32 answers off
  // golden.jsonl, naming the first case with both answers; bf16 asked for
  // and golden.jsonl missing or off by more than
  // max_bf16_probability_delta), INTERNAL (the file is not a TorchScript
  // model, or its warm-up fails with the config's shapes).
  static absl::StatusOr<std::unique_ptr<TorchModelRuntime>> Create(
      const std::string& bundle_dir, const fusion::v1::ModelConfig& config,
      const TorchRuntimeOptions& options);

  ~TorchModelRuntime() override;

  // INVALID_ARGUMENT: an input without tokens or with the wrong feature
  // count. INTERNAL: Torch failed to collate.
  absl::StatusOr<std::unique_ptr<PreparedBatch>> Prepare(
      absl::Span<const ScoringInput* const> batch) override;
  // INVALID_ARGUMENT: a batch not prepared by a TorchModelRuntime.
  // INTERNAL: the forward failed (e.g. a token id past the vocabulary, an
  // exception the model raised): "model forward failed: <the error's last
  // line>", its whole text as a payload (torch_error_text.h).
  absl::StatusOr<std::vector<ScoringOutput>> Run(PreparedBatch& batch) override;
  std::string device() const override;
  // Threads LibTorch uses for one forward (after Create applied them).
  int intra_op_threads() const override;
  PrecisionPlan precision() const override;

 private:
  struct Impl;
  explicit TorchModelRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// LibTorch's thread counts are per process, not per model: the server sets
// them once, before the first model loads. Inter-op threads can be set only
// by the first call. Also holds OpenBLAS to one thread: its threads fight
// LibTorch's for the same cores (2x slower measured here).
void SetProcessThreads(int intra_op_threads, int interop_threads);

bool CudaAvailable();

// The LibTorch version this binary runs against, e.g. "1.13.0".
std::string TorchVersion();

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_TORCH_MODEL_RUNTIME_H_
