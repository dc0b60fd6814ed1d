// BoRA (Wang et al., 2024): DoRA's row magnitude plus a column magnitude, W' = diag(m_out / row) V
// diag(m_in / col) with V = W0 + s B A; m_out and m_in start at W0's row and column norms. The two
// normalisations are applied in the order `order` names (docs/methods.md); the forward scales the input by
// m_in / col and the output by m_out / row around the frozen matmul and the low-rank path.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/options.h"
#include "methods/dora.h"

namespace peftlab {

enum class BoraOrder { out_first, in_first };

// The divisors of BoRA's two normalisations; the one place BoRA's W' is defined.
//   out_first: row = ||V||_row, H = diag(m_out/row) V, col = ||H||_col.
//   in_first:  col = ||V||_col, H = V diag(m_in/col),  row = ||H||_row.
// V = W0 + s B A of `direction` (never built: LoraAdapter::direction_norms).
using BoraDivisors = NormDivisors;
BoraDivisors bora_divisors(const LoraAdapter& direction, const torch::Tensor& base_weight, const torch::Tensor& m_out,
                           const torch::Tensor& m_in, BoraOrder order);

class BoraAdapter : public DoraAdapter {
 public:
  BoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator,
              bool detach_norms, BoraOrder order);

  torch::Tensor magnitude_in;  // m_in, (in)

 protected:
  NormDivisors divisors(const torch::Tensor& base_weight) override;
  torch::Tensor input_scale(const NormDivisors& divisors) override { return magnitude_in / divisors.col; }

 private:
  BoraOrder order_;
};

std::unique_ptr<Method> make_bora_method(Options& options);

}  // namespace peftlab
