#include "server/runtime/bf16_autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <string>

namespace fusion::runtime {
namespace {

// LibTorch 2.4 made the autocast state per device type and deprecated the
// per-backend calls that 1.13 has.
#if TORCH_VERSION_MAJOR > 2 || \
    (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool AutocastEnabled(c10::DeviceType type) {
  return at::autocast::is_autocast_enabled(type);
}
void SetAutocastEnabled(c10::DeviceType type, bool enabled) {
  at::autocast::set_autocast_enabled(type, enabled);
}
at::ScalarType AutocastDtype(c10::DeviceType type) {
  return at::autocast::get_autocast_dtype(type);
}
void SetAutocastDtype(c10::DeviceType type, at::ScalarType dtype) {
  at::autocast::set_autocast_dtype(type, dtype);
}
#else
bool AutocastEnabled(c10::DeviceType type) {
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                       : at::autocast::is_cpu_enabled();
}
void SetAutocastEnabled(c10::DeviceType type, bool enabled) {
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
}
at::ScalarType AutocastDtype(c10::DeviceType type) {
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocastDtype(c10::DeviceType type, at::ScalarType dtype) {
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif

bool OnlyFeedsMatmuls(const torch::jit::Module& module) {
  // The unqualified class name: TorchScript mangles the qualified one
  // (`...___torch_mangle_1.Linear`).
  const auto name = module.type()->name();
  if (!name) return false;
  const std::string& type = name->name();
  return type == "Linear" || type == "NonDynamicallyQuantizableLinear" ||
         type == "MultiheadAttention";
}

}  // namespace

int CastMatmulWeightsToBf16(torch::jit::Module& module) {
  torch::NoGradGuard no_grad;
  int cast = 0;
  for (const auto& sub : module.named_modules()) {
    if (!OnlyFeedsMatmuls(sub.value)) continue;
    for (const auto& param : sub.value.named_parameters(/*recurse=*/false)) {
      if (!param.value.is_floating_point()) continue;
      param.value.set_data(param.value.to(torch::kBFloat16));
      ++cast;
    }
  }
  return cast;
}

Bf16Autocast::Bf16Autocast(const torch::Device& device)
    : device_type_(device.type()),
      was_enabled_(AutocastEnabled(device_type_)),
      was_dtype_(AutocastDtype(device_type_)) {
  SetAutocastDtype(device_type_, at::kBFloat16);
  SetAutocastEnabled(device_type_, true);
  at::autocast::increment_nesting();
}

Bf16Autocast::~Bf16Autocast() {
  // As Python's autocast: the outermost scope drops the weights it cached.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(device_type_, was_enabled_);
  SetAutocastDtype(device_type_, was_dtype_);
}

}  // namespace fusion::runtime
