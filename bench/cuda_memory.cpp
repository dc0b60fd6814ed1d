#include "bench/cuda_memory.h"

#ifdef PEFTLAB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace peftlab {

#ifdef PEFTLAB_WITH_CUDA

bool cuda_memory_stats_available() { return true; }

void reset_cuda_peak_memory(int index) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
}

std::optional<int64_t> cuda_peak_allocated_bytes(int index) {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  return static_cast<int64_t>(stats.allocated_bytes[0].peak);  // [0]: the aggregate over the small and large pools
}

void release_cuda_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }

#else

bool cuda_memory_stats_available() { return false; }

void reset_cuda_peak_memory(int) {}

std::optional<int64_t> cuda_peak_allocated_bytes(int) { return std::nullopt; }

void release_cuda_cache() {}

#endif

}  // namespace peftlab
