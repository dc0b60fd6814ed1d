// Peak GPU memory of the CUDA caching allocator (what torch.cuda.max_memory_allocated reports in Python),
// for `peftlab bench --device cuda`. Only a binary compiled against a LibTorch with CUDA (PEFTLAB_WITH_CUDA)
// reads it; elsewhere every function reports "not available".
#pragma once

#include <cstdint>
#include <optional>

namespace peftlab {

// Whether the allocator statistics below are compiled in.
bool cuda_memory_stats_available();
// Zeroes the peak counters of CUDA device `index` (no-op when not available).
void reset_cuda_peak_memory(int index);
// The most bytes the caching allocator had handed out on device `index` at once since the last reset (its
// allocated_bytes peak, all pools). nullopt when not available.
std::optional<int64_t> cuda_peak_allocated_bytes(int index);
// Returns the caching allocator's unused blocks to the driver (no-op when not available).
void release_cuda_cache();

}  // namespace peftlab
