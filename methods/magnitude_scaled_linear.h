// The forward of DoRA's and BoRA's adapted layer as one autograd node:
//   y = out_scale * (u W0^T + s B(A(dropout(u)))),   u = in_scale * x   (x itself without an in_scale),
// with out_scale = m / ||V||_row (and BoRA's in_scale = m_in / ||V||_col) computed by the caller.
//
// Written as one node rather than composed from LibTorch operations for what it keeps for backward:
//   - x, not u: the q, k, v (and gate, up) layers of a block read the same x, which the node keeps once, where
//     BoRA's composed form keeps a scaled copy per layer;
//   - the output y, not the pre-scale t, when the two share a dtype: the pre-scale values are recovered as
//     y / out_scale (and computed again in backward for entries where out_scale is exactly zero), and y is the
//     tensor the next operation usually keeps anyway (attention keeps v, SwiGLU keeps gate and up). Under bf16
//     autocast y is float32 and t bfloat16, so t, the smaller, is kept;
//   - a one-byte dropout mask rather than the dropped copy of the input.
// One node per layer also removes a dozen small autograd nodes, which is most of the step at small sizes.
// The arithmetic, and the dtypes it runs in under autocast, are those of the composed form.
#pragma once

#include <torch/torch.h>

namespace peftlab {

struct MagnitudeScaledLinear {
  torch::Tensor base_weight;      // W0 (out, in)
  torch::Tensor lora_A, lora_B;   // (r, in), (out, r); undefined: no low-rank path
  torch::Tensor out_scale;        // (out)
  torch::Tensor in_scale;         // (in); undefined: no input scaling (DoRA)
  double scaling = 1.0;           // s
  double dropout = 0.0;           // on the low-rank path's input, while training
  bool training = false;
};

// y for x (..., in): one autograd node when gradients are recorded, plain operations otherwise.
torch::Tensor magnitude_scaled_linear(const torch::Tensor& x, const MagnitudeScaledLinear& layer);

}  // namespace peftlab
