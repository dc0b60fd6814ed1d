// Learning-rate schedules with linear warmup: constant, linear decay to 0, cosine decay to 0 (the shapes of
// Hugging Face's get_*_schedule_with_warmup).
#pragma once

#include <cstdint>
#include <string>

namespace peftlab {

// Learning-rate multiplier for optimizer step `step` (0-based) of `total_steps`.
double lr_multiplier(const std::string& schedule, int64_t step, int64_t warmup_steps, int64_t total_steps);

}  // namespace peftlab
