#include "core/decomposition.h"

#include <stdexcept>

namespace peftlab {

namespace {

struct AxisStats {
  double dM, dD;
  torch::Tensor norms;  // of the effective weight
};

// Statistics over the vectors obtained by reducing along `dim` (dim 1: rows, dim 0: columns).
AxisStats axis_stats(const torch::Tensor& w, const torch::Tensor& w0, int64_t dim) {
  torch::Tensor norm = w.norm(2, dim);
  torch::Tensor norm0 = w0.norm(2, dim);
  torch::Tensor dot = (w * w0).sum(dim);
  torch::Tensor both_zero = (norm == 0) & (norm0 == 0);
  torch::Tensor denominator = norm * norm0;
  torch::Tensor cos = torch::where(denominator > 0, dot / denominator.clamp_min(1e-300),
                                   both_zero.to(torch::kFloat64));
  return {(norm - norm0).abs().mean().item<double>(), (1.0 - cos).mean().item<double>(), norm};
}

}  // namespace

DecompositionStats decomposition_stats(const torch::Tensor& effective_weight, const torch::Tensor& pretrained_weight) {
  if (effective_weight.dim() != 2 || pretrained_weight.dim() != 2 ||
      effective_weight.sizes() != pretrained_weight.sizes())
    throw std::invalid_argument("decomposition_stats: need two 2-D weights of the same shape");
  if (effective_weight.numel() == 0) throw std::invalid_argument("decomposition_stats: empty weight");
  torch::NoGradGuard no_grad;
  torch::Tensor w = effective_weight.detach().to(torch::kCPU, torch::kFloat64);
  torch::Tensor w0 = pretrained_weight.detach().to(torch::kCPU, torch::kFloat64);
  AxisStats rows = axis_stats(w, w0, 1);
  AxisStats cols = axis_stats(w, w0, 0);
  return {rows.dM, rows.dD, cols.dM, cols.dD, rows.norms.contiguous(), cols.norms.contiguous()};
}

}  // namespace peftlab
