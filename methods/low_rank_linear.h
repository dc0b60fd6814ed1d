// The forward of an adapted layer of LoRA, DoRA and BoRA as one autograd node:
//   y = out_scale * (u W0^T + s B(A(dropout(u)))),   u = in_scale * x,
// where LoRA has neither scale, DoRA only out_scale = m / ||V||_row, and BoRA also in_scale = m_in / ||V||_col
// (the scales are computed by the caller, with autograd).
//
// One node per layer rather than a dozen LibTorch operations: at small sizes the per-operation cost is most of
// the step, and what it keeps for backward is chosen here rather than by each operation:
//   - x, not u: the q, k, v (and gate, up) layers of a block read the same x, which is then kept once, where
//     BoRA's composed form keeps a scaled copy per layer;
//   - the output y, not the pre-scale t, when the two share a dtype: the pre-scale values are recovered as
//     y / out_scale (computed again in backward for entries where out_scale is exactly zero), and y is the
//     tensor the next operation usually keeps anyway (attention keeps v, SwiGLU keeps gate and up). Under bf16
//     autocast y is float32 and t bfloat16, so t, the smaller, is kept. Without out_scale neither is kept;
//   - a one-byte dropout mask rather than the dropped copy of the input and the float mask.
// The arithmetic, and the dtypes it runs in under autocast, are those of the composed form
// (tests/methods/low_rank_linear_test.cpp compares both, values and gradients).
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
