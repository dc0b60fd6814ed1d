// Process-wide runtime settings: LibTorch thread count and the compute device.
#pragma once

#include <torch/torch.h>

namespace peftlab {

// LibTorch starts with one intra-op thread on these machines (measured: 2 threads double matmul speed on 2 cores); set it explicitly.
// threads <= 0 means all cores.
void set_threads(int threads);
int hardware_threads();
// The most intra-op threads peftlab starts: kThreadsPerCore per hardware thread. More only oversubscribe
// the cores (each LibTorch/OpenMP thread spins while it waits), and a huge count starts thousands of threads.
inline constexpr int kThreadsPerCore = 4;
int max_threads();
// InputError naming `option` unless 0 <= threads <= max_threads().
void check_threads(int64_t threads, const std::string& option);

// The device `peftlab bench` measures on: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available). InputError
// (naming --device) for an unknown name, or a CUDA device this LibTorch build or this machine does not have.
torch::Device parse_device(const std::string& name);
// Whether this binary was compiled against a LibTorch with CUDA (PEFTLAB_WITH_CUDA), and whether a CUDA device
// is usable now.
bool built_with_cuda();
bool cuda_usable();
// The device training computes on for `name` (`option`: the flag or spec key that gave it, for the message):
// the CPU for "cpu" and "auto". The runner trains on the CPU only for now (only `peftlab bench` moves models
// and batches to the GPU), so any other device is an InputError rather than a run that silently uses the CPU.
torch::Device compute_device(const std::string& name, const std::string& option);

}  // namespace peftlab
