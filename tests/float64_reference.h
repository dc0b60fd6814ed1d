// Float64 references for the evaluation tests, computed by plain forwards without padding or a cache.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/backbone.h"

namespace peftlab::testing {

// Summed log-probability of ids[start..] given what precedes, from one float64 forward without padding.
inline double continuation_logprob(BackboneImpl& model64, const std::vector<int32_t>& ids, int64_t start) {
  torch::NoGradGuard no_grad;
  auto input = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
  auto logprobs = torch::log_softmax(model64.forward(input).squeeze(0), -1);
  double total = 0;
  for (size_t t = size_t(std::max<int64_t>(start, 1)); t < ids.size(); ++t)
    total += logprobs[long(t) - 1][ids[t]].item<double>();
  return total;
}

}  // namespace peftlab::testing
