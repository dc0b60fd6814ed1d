#include "core/runtime.h"

#include <thread>

#include "core/errors.h"

namespace peftlab {

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_threads(int threads) {
  torch::set_num_threads(threads > 0 ? threads : hardware_threads());
}

torch::Device parse_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) throw InputError("--device", "CUDA is not available in this LibTorch build");
    return torch::Device(name);
  }
  throw InputError("--device", fmt::format("unknown device '{}' (cpu, cuda, cuda:N, auto)", name));
}

}  // namespace peftlab
