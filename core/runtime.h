// Process-wide runtime settings: LibTorch thread count and the compute device.
#pragma once

#include <torch/torch.h>

namespace peftlab {

// LibTorch starts with one intra-op thread on these machines (DESIGN.md traps); set it explicitly.
// threads <= 0 means all cores.
void set_threads(int threads);
int hardware_threads();

// "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).
torch::Device parse_device(const std::string& name);

}  // namespace peftlab
