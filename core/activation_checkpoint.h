// Activation checkpointing (torch.utils.checkpoint): a block's forward runs without keeping its
// intermediate activations; the backward pass runs the block again, from its saved input, with the same
// random stream (dropout masks) and the same autocast state, and takes the gradients from that recompute.
// Costs one more forward of the block; saves everything the block would have kept for backward.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace peftlab {

using Block = std::function<torch::Tensor(const torch::Tensor&)>;

// y = block(x), checkpointed when autograd is recording; `parameters` are the block's trainable tensors
// (their gradients come out of the recompute). `block` must capture what it needs by value: it runs again
// during the backward pass.
torch::Tensor checkpointed(Block block, const torch::Tensor& x, const std::vector<torch::Tensor>& parameters);

}  // namespace peftlab
