// PiSSA (Meng et al., 2024): LoRA whose A and B start as the principal singular directions of the pretrained
// weight and whose frozen weight becomes the residual. With W0 = U S V^T (singular values descending) and
// s = alpha / r: A = diag(sqrt(S_r / s)) V_r^T, B = U_r diag(sqrt(S_r / s)), W_res = W0 - s B A, so
// W' = W_res + s B A equals W0 at initialisation (PEFT's init_lora_weights="pissa"). The adapter keeps A0, B0
// to reconstruct W0 (the decomposition statistics compare against it) and to export the adapter converted to
// a LoRA of rank 2r that applies to the pretrained W0: A' = [A; A0], B' = [B, -B0] (PEFT's conversion).
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/options.h"
#include "methods/lora.h"

namespace peftlab {

class PissaAdapter : public LoraAdapter {
 public:
  // Rewrites `base_weight` in place into the residual W0 - s B0 A0.
  PissaAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator);

  // W_res + s B0 A0.
  torch::Tensor pretrained_weight(const torch::Tensor& base_weight) override;

  torch::Tensor initial_A, initial_B;  // A0 (r, in), B0 (out, r): buffers, not trained
};

std::unique_ptr<Method> make_pissa_method(Options& options);

}  // namespace peftlab
