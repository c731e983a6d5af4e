#include "server/runtime/torch_model_runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/common/log.h"
#include "server/runtime/bf16_autocast.h"
#include "server/runtime/cpu_budget.h"
#include "server/runtime/golden_file.h"
#include "server/runtime/precision.h"
#include "server/runtime/torch_error_text.h"

namespace fusion::runtime {
namespace {

// OpenBLAS threads fight LibTorch's for the same cores (2x slower measured
// here), so hold OpenBLAS to one thread. Looked up at run time: the binary
// does not link OpenBLAS directly, LibTorch's BLAS may or may not be it.
void LimitOpenBlasThreads() {
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(1);
  }
}

absl::StatusOr<torch::Device> ChooseDevice(DevicePreference preference) {
  const bool cuda = torch::cuda::is_available();
  switch (preference) {
    case DevicePreference::kCpu:
      return torch::Device(torch::kCPU);
    case DevicePreference::kCuda:
      if (!cuda) {
        return absl::FailedPreconditionError(
            "--device=cuda but no CUDA device is available");
      }
      return torch::Device(torch::kCUDA, 0);
    case DevicePreference::kAuto:
      break;
  }
  return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

// What Prepare hands to Run.
struct TorchPreparedBatch final : PreparedBatch {
  std::vector<const ScoringInput*> batch;  // the caller's, not owned
  bool need_weights = false;
  int64_t positions = 0;  // requests x (padded tokens + features)
  std::vector<torch::jit::IValue> inputs;  // ids, mask, features, weights
};

// An exception's text, without the C++ backtrace a c10::Error carries.
// TorchScript's own errors (raise, a failing op) are std::runtime_error.
std::string TorchText(const std::exception& e) {
  if (const auto* error = dynamic_cast<const c10::Error*>(&e)) {
    return error->what_without_backtrace();
  }
  return e.what();
}

// Runs `fn` under InferenceMode; Torch's exceptions become INTERNAL, the
// error's last line in the message and its whole text beside it
// (torch_error_text.h).
template <typename Fn>
auto GuardTorch(absl::string_view what, Fn fn)
    -> absl::StatusOr<decltype(fn())> {
  try {
    c10::InferenceMode inference_mode;
    return fn();
  } catch (const std::exception& e) {
    return TorchFailure(what, TorchText(e));
  }
}

}  // namespace

struct TorchModelRuntime::Impl {
  torch::jit::script::Module module;  // fp32
  // A second copy (a few MB) with bf16 matmul weights, which runs only under
  // Bf16Autocast, while fp32 batches keep the fp32 weights. Set iff
  // precision.bf16.
  std::optional<torch::jit::script::Module> bf16_module;
  PrecisionPlan precision;
  torch::Device device{torch::kCPU};
  // Padded positions are masked; 0 is the exported embedding's padding_idx.
  int64_t pad_id = 0;
  int64_t num_features = 0;
  int intra_op_threads = 1;

  // Pads the batch to its longest request.
  std::unique_ptr<TorchPreparedBatch> Collate(
      absl::Span<const ScoringInput* const> batch) const {
    auto prepared = std::make_unique<TorchPreparedBatch>();
    prepared->batch.assign(batch.begin(), batch.end());
    prepared->need_weights =
        std::any_of(batch.begin(), batch.end(), [](const ScoringInput* in) {
          return in->attention != AttentionDetail::kNone;
        });
    const int64_t size = static_cast<int64_t>(batch.size());
    int64_t length = 1;
    for (const ScoringInput* in : batch) {
      length = std::max<int64_t>(length, in->token_ids.size());
    }
    auto ids = torch::full({size, length}, pad_id, torch::kInt64);
    auto mask = torch::zeros({size, length}, torch::kInt64);
    auto features = torch::empty({size, num_features}, torch::kFloat32);
    int64_t* ids_data = ids.data_ptr<int64_t>();
    int64_t* mask_data = mask.data_ptr<int64_t>();
    float* feature_data = features.data_ptr<float>();
    for (int64_t b = 0; b < size; ++b) {
      const ScoringInput& in = *batch[b];
      for (size_t t = 0; t < in.token_ids.size(); ++t) {
        ids_data[b * length + t] = in.token_ids[t];
        mask_data[b * length + t] = 1;
      }
      std::copy(in.features.begin(), in.features.end(),
                feature_data + b * num_features);
    }
    // The copy is queued on the device's current stream, ahead of the
    // forward's kernels; the caching host allocator keeps the pinned buffers
    // until it has run.
    if (device.is_cuda()) {
      ids = ids.pin_memory().to(device, /*non_blocking=*/true);
      mask = mask.pin_memory().to(device, /*non_blocking=*/true);
      features = features.pin_memory().to(device, /*non_blocking=*/true);
    }
    prepared->inputs = {ids, mask, features, prepared->need_weights};
    prepared->positions = size * (length + num_features);
    return prepared;
  }

  // Cuts request `b`'s attention out of the padded batch outputs.
  static void SplitAttention(const torch::Tensor& text_to_tab,
                             const torch::Tensor& tab_to_text, int64_t b,
                             const ScoringInput& in, ScoringOutput& out) {
    const int64_t tokens = static_cast<int64_t>(in.token_ids.size());
    torch::Tensor t2f = text_to_tab[b].narrow(1, 0, tokens);  // [H,T,F]
    torch::Tensor f2t = tab_to_text[b].narrow(2, 0, tokens);  // [H,F,T]
    if (in.attention == AttentionDetail::kMean) {
      t2f = t2f.mean(0);
      f2t = f2t.mean(0);
    }
    t2f = t2f.contiguous();
    f2t = f2t.contiguous();
    out.text_to_features.assign(t2f.data_ptr<float>(),
                                t2f.data_ptr<float>() + t2f.numel());
    out.features_to_text.assign(f2t.data_ptr<float>(),
                                f2t.data_ptr<float>() + f2t.numel());
    out.text_to_features_shape.assign(t2f.sizes().begin(), t2f.sizes().end());
    out.features_to_text_shape.assign(f2t.sizes().begin(), f2t.sizes().end());
  }

  // Forward in the precision the plan gives the batch's size.
  std::vector<ScoringOutput> Forward(TorchPreparedBatch& prepared) {
    return ForwardIn(prepared, RunsInBf16(precision, prepared.positions));
  }

  // Forward, then the outputs (fp32 on the CPU) cut back per request.
  // Consumes the inputs. `bf16` needs bf16_module.
  std::vector<ScoringOutput> ForwardIn(TorchPreparedBatch& prepared,
                                       bool bf16) {
    const auto& batch = prepared.batch;
    c10::intrusive_ptr<c10::ivalue::Tuple> result;
    if (bf16) {
      Bf16Autocast autocast(device);
      result = bf16_module->forward(std::move(prepared.inputs)).toTuple();
    } else {
      result = module.forward(std::move(prepared.inputs)).toTuple();
    }
    const auto& elements = result->elements();
    auto to_host = [](const c10::IValue& value) {
      return value.toTensor().to(torch::kCPU, torch::kFloat32).contiguous();
    };
    torch::Tensor probs = to_host(elements[0]);
    torch::Tensor text_to_tab, tab_to_text;
    if (prepared.need_weights) {
      text_to_tab = to_host(elements[1]);
      tab_to_text = to_host(elements[2]);
    }
    const int64_t classes = probs.size(1);
    const float* prob_data = probs.data_ptr<float>();
    std::vector<ScoringOutput> outputs(batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      outputs[b].probabilities.assign(prob_data + b * classes,
                                      prob_data + (b + 1) * classes);
      if (batch[b]->attention != AttentionDetail::kNone) {
        SplitAttention(text_to_tab, tab_to_text, b, *batch[b], outputs[b]);
      }
    }
    return outputs;
  }

  // Exercises short and long shapes, with and without weights, so the
  // TorchScript profiling executor has optimised before real traffic.
  void WarmUp(int iterations, int max_tokens, int max_batch, bool bf16) {
    ScoringInput short_input, long_input;
    short_input.token_ids.assign(8, 1);
    long_input.token_ids.assign(max_tokens, 1);
    short_input.features.assign(num_features, 0.0f);
    long_input.features = short_input.features;
    long_input.attention = AttentionDetail::kPerHead;
    std::vector<const ScoringInput*> batch(std::max(1, max_batch),
                                           &short_input);
    batch.back() = &long_input;
    c10::InferenceMode inference_mode;
    for (int i = 0; i < iterations; ++i) {
      ForwardIn(*Collate(absl::MakeConstSpan(&batch[0], 1)), bf16);
      ForwardIn(*Collate(batch), bf16);
    }
  }

  // Every golden case scored alone (as the exporter scored them) and all in
  // one padded batch; `bf16` needs bf16_module. Torch errors propagate.
  std::pair<std::vector<ScoringOutput>, std::vector<ScoringOutput>> ScoreGolden(
      const std::vector<GoldenCase>& cases, bool bf16) {
    c10::InferenceMode inference_mode;
    std::vector<const ScoringInput*> all;
    std::vector<ScoringOutput> alone;
    for (const GoldenCase& golden : cases) {
      all.push_back(&golden.input);
      alone.push_back(std::move(
          ForwardIn(*Collate(absl::MakeConstSpan(&all.back(), 1)), bf16)[0]));
    }
    return {std::move(alone), ForwardIn(*Collate(all), bf16)};
  }

  // The largest probability change bf16 makes to the golden answers, each
  // request alone and all in one padded batch.
  double Bf16GoldenDelta(const std::vector<GoldenCase>& cases) {
    const auto [alone, batched] = ScoreGolden(cases, /*bf16=*/true);
    return std::max(MaxProbabilityDelta(cases, alone),
                    MaxProbabilityDelta(cases, batched));
  }

  // The fp32 module must give the bundle's own answers: a golden file that
  // disagrees means model.pt, the config or golden.jsonl is not what the
  // exporter wrote. FAILED_PRECONDITION naming the first case that
  // disagrees, with both answers.
  absl::Status CheckFp32Golden(const std::string& model,
                               const std::vector<GoldenCase>& cases) {
    const absl::Time start = absl::Now();
    std::pair<std::vector<ScoringOutput>, std::vector<ScoringOutput>> scored;
    try {
      scored = ScoreGolden(cases, /*bf16=*/false);
    } catch (const std::exception& e) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the model fails on its own golden requests (", kGoldenFileName,
          "): ", ConciseTorchError(TorchText(e))));
    }
    const auto& [alone, batched] = scored;
    for (const auto* outputs : {&alone, &batched}) {
      if (auto disagreement =
              FirstDisagreement(cases, *outputs, kMaxFp32GoldenDelta)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the model disagrees with its golden answers (fp32, scored ",
            outputs == &alone ? "alone" : "in one padded batch", ", tolerance ",
            kMaxFp32GoldenDelta, "): ", *disagreement));
      }
    }
    Log(LogLevel::kInfo, model, ": ", cases.size(), " golden answers agree ",
        "in fp32 within ", absl::SixDigits(MaxProbabilityDelta(cases, alone)),
        " alone and ", absl::SixDigits(MaxProbabilityDelta(cases, batched)),
        " in one padded batch (tolerance ", kMaxFp32GoldenDelta, ", ",
        absl::FormatDuration(absl::Now() - start), ")");
    return absl::OkStatus();
  }

  // Both precisions timed at CrossoverShapes (precision.h), ~0.5 s.
  std::vector<ShapeTiming> TimePrecisions(int max_tokens, int max_batch) {
    constexpr int kRepetitions = 7;
    c10::InferenceMode inference_mode;
    return TimeBothPrecisions(
        CrossoverShapes(max_tokens, max_batch), num_features, max_tokens,
        kRepetitions, [this](const CrossoverShape& shape, bool bf16) {
          ScoringInput input;
          input.token_ids.assign(shape.tokens, 1);
          input.features.assign(num_features, 0.0f);
          const std::vector<const ScoringInput*> batch(shape.requests, &input);
          auto prepared = Collate(batch);
          const absl::Time start = absl::Now();
          ForwardIn(*prepared, bf16);
          return absl::ToDoubleSeconds(absl::Now() - start);
        });
  }

  // The bf16 copy: loaded again, matmul weights cast, warmed up in bf16.
  void LoadBf16Module(const std::string& path,
                      const fusion::v1::ModelConfig& config) {
    bf16_module = torch::jit::load(path, device);
    bf16_module->eval();
    CastMatmulWeightsToBf16(*bf16_module);
    WarmUp(config.runtime().warmup_iterations(), config.max_tokens(),
           config.batching().max_batch_size(), /*bf16=*/true);
  }

  // Decides the precision (precision.h), and for bf16 builds, checks and
  // (under AUTO) times the bf16 copy. `golden`: null when the bundle has
  // none. Torch errors propagate as exceptions.
  absl::Status SetUpPrecision(const std::string& path,
                              const fusion::v1::ModelConfig& config,
                              Precision requested,
                              const std::vector<GoldenCase>* golden,
                              double max_bf16_delta) {
    const std::string model =
        absl::StrCat(config.name(), " v", config.version());
    const bool native = CpuComputesBf16Natively();
    const PrecisionDecision decision =
        DecidePrecision(requested, device.is_cuda(), native, golden != nullptr);
    Log(LogLevel::kInfo, model, ": precision: ", decision.reason);
    if (decision.use == Bf16Use::kNever) return absl::OkStatus();
    const bool every_batch = decision.use == Bf16Use::kEveryBatch;
    if (golden == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "precision bf16: no golden answers to check it against (no ",
          kGoldenFileName, ")"));
    }
    if (every_batch && !device.is_cuda() && !native) {
      Log(LogLevel::kWarning, model,
          ": this CPU does not compute bf16 "
          "natively; bf16 is emulated and slower than fp32");
    }
    LoadBf16Module(path, config);
    const double delta = Bf16GoldenDelta(*golden);
    const std::string checked =
        absl::StrCat("bf16 moves a golden probability by up to ",
                     absl::SixDigits(delta), " (limit ", max_bf16_delta, ")");
    if (!(delta <= max_bf16_delta)) {
      bf16_module.reset();
      if (every_batch) return absl::FailedPreconditionError(checked);
      Log(LogLevel::kWarning, model, ": ", checked, "; serving fp32");
      return absl::OkStatus();
    }
    Log(LogLevel::kInfo, model, ": ", checked);
    if (every_batch) {
      precision = {/*bf16=*/true, /*bf16_min_positions=*/0};
      return absl::OkStatus();
    }
    const std::vector<ShapeTiming> timings =
        TimePrecisions(config.max_tokens(), config.batching().max_batch_size());
    std::string measured;
    for (const ShapeTiming& t : timings) {
      absl::StrAppend(&measured, measured.empty() ? "" : ", ", t.positions,
                      ": ", absl::SixDigits(t.bf16_seconds / t.fp32_seconds));
    }
    Log(LogLevel::kInfo, model,
        ": bf16/fp32 forward time by positions "
        "(requests x (tokens + features)): ",
        measured);
    if (const auto from = Bf16MinPositions(timings)) {
      precision = {/*bf16=*/true, /*bf16_min_positions=*/*from};
    } else {
      Log(LogLevel::kInfo, model,
          ": bf16 is not faster at any batch size "
          "measured; serving fp32");
      bf16_module.reset();
    }
    return absl::OkStatus();
  }
};

TorchModelRuntime::TorchModelRuntime(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

TorchModelRuntime::~TorchModelRuntime() = default;

absl::StatusOr<std::unique_ptr<TorchModelRuntime>> TorchModelRuntime::Create(
    const std::string& bundle_dir, const fusion::v1::ModelConfig& config,
    const TorchRuntimeOptions& options) {
  const std::string path = bundle_dir + "/" + config.model_file();
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("model file not found: ", path));
  }
  auto device = ChooseDevice(options.device);
  if (!device.ok()) return device.status();
  const std::string model = absl::StrCat(config.name(), " v", config.version());

  auto impl = std::make_unique<Impl>();
  impl->device = *device;
  impl->num_features = config.features_size();
  impl->intra_op_threads = std::max(1, options.intra_op_threads);
  try {
    impl->module = torch::jit::load(path, impl->device);
    impl->module.eval();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        path, " is not a TorchScript model LibTorch can load: ", TorchText(e)));
  }
  try {
    impl->WarmUp(config.runtime().warmup_iterations(), config.max_tokens(),
                 config.batching().max_batch_size(), /*bf16=*/false);
  } catch (const std::exception& e) {
    // Most often config.pbtxt is not this model's: say what was asked.
    Log(LogLevel::kWarning, model, ": LibTorch's whole error: ", TorchText(e));
    return absl::InternalError(absl::StrCat(
        "the warm-up forward of ", path, " failed with config.pbtxt's shapes (",
        config.max_tokens(), " max_tokens, ", config.features_size(),
        " features, batches of up to ", config.batching().max_batch_size(),
        "): ", ConciseTorchError(TorchText(e))));
  }
  const std::string golden_path = bundle_dir + "/" + kGoldenFileName;
  auto golden = ReadGoldenFile(golden_path);
  if (absl::IsNotFound(golden.status())) {
    Log(LogLevel::kWarning, model, ": no ", golden_path,
        "; the model's answers are not checked at load");
  } else if (!golden.ok()) {
    return golden.status();
  } else {
    if (absl::Status fits =
            CheckGoldenCasesFit(*golden, config.max_tokens(),
                                config.features_size(), config.classes_size());
        !fits.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(golden_path, ": ", fits.message()));
    }
    if (absl::Status agrees = impl->CheckFp32Golden(model, *golden);
        !agrees.ok()) {
      return agrees;
    }
  }
  try {
    if (absl::Status status = impl->SetUpPrecision(
            path, config,
            options.precision.value_or(config.runtime().precision()),
            golden.ok() ? &*golden : nullptr,
            options.max_bf16_probability_delta);
        !status.ok()) {
      return status;
    }
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("setting up bf16 for ", path,
                     " failed: ", ConciseTorchError(TorchText(e))));
  }
  return std::unique_ptr<TorchModelRuntime>(
      new TorchModelRuntime(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<PreparedBatch>> TorchModelRuntime::Prepare(
    absl::Span<const ScoringInput* const> batch) {
  for (const ScoringInput* in : batch) {
    if (in->token_ids.empty() ||
        static_cast<int64_t>(in->features.size()) != impl_->num_features) {
      return absl::InvalidArgumentError(
          "Prepare: input without tokens or with the wrong feature count");
    }
  }
  if (batch.empty()) return std::make_unique<TorchPreparedBatch>();
  auto prepared =
      GuardTorch("collating the batch", [&] { return impl_->Collate(batch); });
  if (!prepared.ok()) return prepared.status();
  return std::unique_ptr<PreparedBatch>(std::move(*prepared));
}

absl::StatusOr<std::vector<ScoringOutput>> TorchModelRuntime::Run(
    PreparedBatch& batch) {
  auto* prepared = dynamic_cast<TorchPreparedBatch*>(&batch);
  if (prepared == nullptr) {
    return absl::InvalidArgumentError(
        "Run: batch not from a TorchModelRuntime");
  }
  if (prepared->batch.empty()) return std::vector<ScoringOutput>{};
  return GuardTorch("model forward", [&] { return impl_->Forward(*prepared); });
}

void SetProcessThreads(int intra_op_threads, int interop_threads) {
  LimitOpenBlasThreads();
  at::set_num_threads(std::max(1, intra_op_threads));
  static std::once_flag once;  // settable only before first use
  std::call_once(once, [interop_threads] {
    try {
      at::set_num_interop_threads(std::max(1, interop_threads));
    } catch (const c10::Error&) {
      // Inter-op threads already started (Torch ran before): keep them.
    }
  });
}

bool CudaAvailable() { return torch::cuda::is_available(); }

std::string TorchModelRuntime::device() const { return impl_->device.str(); }

int TorchModelRuntime::intra_op_threads() const {
  return impl_->intra_op_threads;
}

PrecisionPlan TorchModelRuntime::precision() const { return impl_->precision; }

std::string TorchVersion() {
  return absl::StrCat(TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR, ".",
                      TORCH_VERSION_PATCH);
}

}  // namespace fusion::runtime
