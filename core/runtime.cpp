#include "core/runtime.h"

#include <regex>
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

int max_threads() { return kThreadsPerCore * hardware_threads(); }

void check_threads(int64_t threads, const std::string& option) {
  if (threads < 0) throw InputError(option, fmt::format("expected 0 (all cores) or a positive count, got {}", threads));
  if (threads > max_threads())
    throw InputError(option, fmt::format("{} is more than {} ({} per core of this machine)", threads, max_threads(),
                                         kThreadsPerCore));
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

torch::Device compute_device(const std::string& name, const std::string& option) {
  static const std::regex known("cpu|auto|cuda|cuda:[0-9]+");
  if (!std::regex_match(name, known))
    throw InputError(option, fmt::format("unknown device '{}' (cpu, cuda, cuda:N or auto)", name));
  if (name == "cpu" || name == "auto") return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    throw InputError(option, fmt::format("device '{}' is not available: this LibTorch build has no CUDA (use cpu)", name));
  throw InputError(option, fmt::format("device '{}': peftlab trains on the CPU only for now (use cpu)", name));
}

}  // namespace peftlab
