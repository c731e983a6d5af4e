// bfloat16 over an fp32 TorchScript module: its matmul weights cast once at
// load, autocast around each forward for the activations. Casting the
// weights up front matters: autocast alone re-casts every weight on every
// forward (~67 copies here), which made bf16 slower than fp32 at all but
// the largest batches.
//
// Includes Torch: for server/runtime/ .cc files only.
#ifndef FUSION_SERVER_RUNTIME_BF16_AUTOCAST_H_
#define FUSION_SERVER_RUNTIME_BF16_AUTOCAST_H_

#include <torch/script.h>

namespace fusion::runtime {

// Casts to bf16, in place, the weights and biases of every Linear and
// MultiheadAttention submodule (whose parameters only feed matmuls).
// LayerNorm, embeddings and other parameters stay fp32. The module then runs
// only under Bf16Autocast. Returns how many tensors were cast.
int CastMatmulWeightsToBf16(torch::jit::Module& module);

// Autocast to bf16 on `device`'s type for the calling thread (autocast
// state is thread-local) while in scope; restores the previous state.
// Not movable: it must end on the thread that made it.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(const torch::Device& device);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  const c10::DeviceType device_type_;
  const bool was_enabled_;
  const at::ScalarType was_dtype_;
};

}  // namespace fusion::runtime

#endif  // FUSION_SERVER_RUNTIME_BF16_AUTOCAST_H_
