// The forward of an adapted layer of LoRA, DoRA and BoRA as one autograd node:
//   y = out_scale * (u W0^T + s B(A(dropout(u)))),   u = in_scale * x,
// where LoRA has neither scale, DoRA only out_scale = m / ||V||_row, and BoRA also in_scale = m_in / ||V||_col
// (the scales are computed by the caller, with autograd).
//
// One node per layer rather than a dozen LibTorch operations: at small sizes the per-operation cost is most of
// the step, and what it keeps for backward and the passes it makes are chosen here:
//   - the scales multiply the weights (out x in at most), not the activations (tokens x out):
//     y = x W0s^T + s h Bs^T with W0s = diag(out_scale) W0 diag(in_scale), Bs = diag(out_scale) B,
//     h = dropout(x) As^T, As = A diag(in_scale); the low-rank product is added inside the GEMM (addmm), and
//     backward forms the input gradient the same way, so no element-wise pass over activations remains but
//     the magnitudes' own gradients (a sum over tokens) and BoRA's input-scale gradient;
//   - it keeps x, once for the q, k, v (and gate, up) layers that read the same x; the output y when there is
//     an out_scale (t = y / out_scale gives the magnitude's gradient; y is what the next operation usually keeps
//     anyway: attention keeps v, SwiGLU gate and up; where an out_scale entry is exactly 0, t is computed
//     again); h; and a one-byte dropout mask;
//   - under bf16 autocast the matmuls run in bfloat16 and y is bfloat16, as LoRA's output always was.
// tests/methods/low_rank_linear_test.cpp compares it with the formula composed from LibTorch operations and
// differentiated by autograd: to float64 rounding, and to bfloat16 rounding under autocast.
#pragma once

#include <torch/torch.h>

namespace peftlab {

struct LowRankLinear {
  torch::Tensor base_weight;      // W0 (out, in)
  torch::Tensor lora_A, lora_B;   // (r, in), (out, r); undefined: no low-rank path
  torch::Tensor out_scale;        // (out); undefined: none (LoRA)
  torch::Tensor in_scale;         // (in); undefined: none (LoRA, DoRA)
  double scaling = 1.0;           // s
  double dropout = 0.0;           // on the low-rank path's input, while training
  bool training = false;
};

// y for x (..., in): one autograd node when gradients are recorded, plain operations otherwise.
torch::Tensor low_rank_linear(const torch::Tensor& x, const LowRankLinear& layer);

}  // namespace peftlab
