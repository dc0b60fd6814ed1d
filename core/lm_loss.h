// The causal-LM loss without the logits tensor.
//
// A language-model step's largest tensors are the logits and their gradient, (tokens x vocabulary) each: at
// batch 8 x 256 with a 32,000-token vocabulary, 260 MB apiece in float32, more than a small model's weights,
// adapters and optimizer state together. The tiled loss computes the output projection and the cross-entropy
// a few hundred rows at a time, keeps one log-sum-exp per token, and in backward computes each tile's logits
// again to form its gradient (softmax - one-hot) and multiply it straight into the hidden-state and weight
// gradients. Peak memory then holds one tile of logits instead of three full tensors; the result is the
// unfused cross_entropy(hidden @ weight^T, targets) up to rounding (tests/core/lm_loss_test.cpp, float64).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "core/backbone.h"

namespace peftlab {

// Logits per tile (rows x vocabulary) the tiled loss materialises at once: 2^23, 32 MiB in float32 (262 rows of
// a 32,000-word vocabulary: products of that height still run near the matmul peak).
constexpr int64_t kLossTileElements = int64_t{1} << 23;

// Per-token negative log-likelihood -log softmax(hidden @ weight^T)[target]: hidden (N, H) in the model's dtype,
// weight (V, H), targets (N) int64; 0 where the target is `ignore_index`. The log-softmax is taken in at least
// float32, as F::cross_entropy on float32 logits. Differentiable in hidden and weight. `tile_rows` 0: as many
// rows as fit kLossTileElements.
torch::Tensor tiled_token_nll(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                              int64_t ignore_index, int64_t tile_rows = 0);

// Next-token negative log-likelihoods (B, T-1) of a decoder's final hidden states (B, T, H) against `labels`
// (B, T) (labels[:, t+1] is the target of position t; `ignore_index` where nothing is scored). Tiled when the
// backbone's logits are a plain projection (lm_head_weight()) and `tiled` is true, else through logits().
torch::Tensor causal_lm_token_nll(BackboneImpl& backbone, const torch::Tensor& hidden, const torch::Tensor& labels,
                                  int64_t ignore_index, bool tiled = true);

}  // namespace peftlab
