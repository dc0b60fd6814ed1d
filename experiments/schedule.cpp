#include "experiments/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace peftlab {

// Exactly Hugging Face's lambdas, so that learning rates match theirs step for step (step 0 of a warmup
// trains with lr 0, as there).
double lr_multiplier(const std::string& schedule, int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (schedule == "constant") return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = static_cast<double>(step - warmup_steps) / span;
  if (schedule == "linear") return std::max(0.0, 1.0 - progress);
  if (schedule == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  throw std::invalid_argument("unknown schedule " + schedule);
}

}  // namespace peftlab
