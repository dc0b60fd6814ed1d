// Weight-decomposition statistics (docs/run-file.md, "decomposition"): how far the magnitude and
// the direction of an effective weight W' (out, in) have moved from the pretrained W0, by rows (one per
// output feature, norms over dim 1) and by columns (one per input feature, norms over dim 0).
//   dM = mean_i | ||W'_i|| - ||W0_i|| |      dD = mean_i (1 - cos(W'_i, W0_i))
// Everything is computed in float64 whatever the input dtype or device.
#pragma once

#include <torch/torch.h>

namespace peftlab {

struct DecompositionStats {
  double dM_row = 0, dD_row = 0;  // over rows (output features)
  double dM_col = 0, dD_col = 0;  // over columns (input features)
  torch::Tensor m_row;            // ||W'_i|| per row, float64 on CPU, shape (out)
  torch::Tensor m_col;            // ||W'_:,j|| per column, float64 on CPU, shape (in)
};

// Throws std::invalid_argument unless both are 2-D with the same shape (a caller bug, not user input).
// A zero-norm vector has no direction: cos is taken as 1 when both vectors are zero, 0 when only one is.
DecompositionStats decomposition_stats(const torch::Tensor& effective_weight, const torch::Tensor& pretrained_weight);

}  // namespace peftlab
