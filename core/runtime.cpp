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

bool built_with_cuda() {
#ifdef PEFTLAB_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_usable() { return torch::cuda::is_available(); }

namespace {

const std::regex& known_device() {
  static const std::regex known("cpu|auto|cuda|cuda:[0-9]+");
  return known;
}

// InputError naming `option` unless the CUDA device `name` ("cuda" or "cuda:N") exists here.
void check_cuda_device(const std::string& name, const std::string& option) {
  if (!torch::cuda::is_available())
    throw InputError(option, fmt::format("device '{}' is not available: {} (use cpu)", name,
                                         built_with_cuda() ? "no CUDA device is visible to this process"
                                                           : "this LibTorch build has no CUDA"));
  if (name.size() > 5) {
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    const std::string index_text = name.substr(5);
    if (index_text.size() > 9 || std::stoll(index_text) >= count)
      throw InputError(option, fmt::format("device '{}' is not available: this machine has {} CUDA device(s) "
                                           "(cuda:0 to cuda:{})", name, count, count - 1));
  }
}

}  // namespace

torch::Device parse_device(const std::string& name) {
  if (!std::regex_match(name, known_device()))
    throw InputError("--device", fmt::format("unknown device '{}' (cpu, cuda, cuda:N or auto)", name));
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  check_cuda_device(name, "--device");
  return name == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(name);
}

torch::Device compute_device(const std::string& name, const std::string& option) {
  if (!std::regex_match(name, known_device()))
    throw InputError(option, fmt::format("unknown device '{}' (cpu, cuda, cuda:N or auto)", name));
  if (name == "cpu" || name == "auto") return torch::Device(torch::kCPU);
  check_cuda_device(name, option);
  throw InputError(option, fmt::format("device '{}': training runs on the CPU only for now; only `peftlab bench` "
                                       "uses the GPU (use cpu here, or `peftlab --device {} bench`)", name, name));
}

}  // namespace peftlab
