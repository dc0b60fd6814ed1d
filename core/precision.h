// Mixed precision: `train.precision: bf16` runs the matmuls in bfloat16 under LibTorch's autocast while the
// parameters (the master weights the optimizer updates) stay float32, as torch.autocast does in PyTorch.
#pragma once

#include <torch/torch.h>

#include <string>

namespace peftlab {

enum class Precision { fp32, bf16 };

// "fp32" or "bf16"; anything else is std::invalid_argument (the spec validates the name first).
Precision precision_from_name(const std::string& name);
std::string precision_name(Precision precision);

// The thread's autocast settings (CPU and CUDA), to be captured and re-established later (activation
// checkpointing recomputes a block under the autocast state its forward ran with).
struct AutocastState {
  bool cpu = false, cuda = false;
  at::ScalarType cpu_dtype = at::kBFloat16, cuda_dtype = at::kHalf;
  static AutocastState current();
  static AutocastState of(Precision precision);  // fp32: autocast off; bf16: bfloat16 on CPU and CUDA
};

// Sets an autocast state for its lifetime and restores the previous one (RAII, like `with torch.autocast`).
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  explicit AutocastScope(Precision precision) : AutocastScope(AutocastState::of(precision)) {}
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
  bool nested_ = false;
};

}  // namespace peftlab
