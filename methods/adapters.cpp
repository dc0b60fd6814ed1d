#include "methods/adapters.h"

#include <cmath>

namespace peftlab {

namespace {

torch::Tensor row_norms(const torch::Tensor& w) { return w.norm(2, {1}); }
torch::Tensor col_norms(const torch::Tensor& w) { return w.norm(2, {0}); }

}  // namespace

BoraDivisors bora_divisors(const torch::Tensor& V, const torch::Tensor& m_out, const torch::Tensor& m_in,
                           BoraOrder order) {
  BoraDivisors d;
  if (order == BoraOrder::out_first) {
    d.row = row_norms(V);
    d.col = col_norms(V * (m_out / d.row).unsqueeze(1));
  } else {
    d.col = col_norms(V);
    d.row = row_norms(V * (m_in / d.col).unsqueeze(0));
  }
  return d;
}

LoraAdapter::LoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator)
    : shape_(shape) {
  if (shape.rank == 0) return;
  auto options = base_weight.options();
  // Drawn in float64 on the CPU from the seeded generator, then cast: the same A for every dtype and device.
  auto a = torch::empty({shape.rank, shape.in_features}, torch::kFloat64);
  if (shape.init_a == InitA::kaiming_uniform) {
    // nn.Linear's default, kaiming_uniform_(a=sqrt(5)): bound = gain * sqrt(3 / fan_in) = 1 / sqrt(in).
    double bound = 1.0 / std::sqrt(static_cast<double>(shape.in_features));
    a.uniform_(-bound, bound, generator);
  } else {
    a.normal_(0.0, 1.0 / static_cast<double>(shape.rank), generator);  // PEFT's init_lora_weights="gaussian"
  }
  lora_A = register_parameter("lora_A", a.to(options));
  lora_B = register_parameter("lora_B", torch::zeros({shape.out_features, shape.rank}, options));
}

torch::Tensor LoraAdapter::low_rank_path(const torch::Tensor& x) {
  if (shape_.rank == 0) return {};
  auto dropped = shape_.dropout > 0 ? torch::dropout(x, shape_.dropout, is_training()) : x;
  return torch::nn::functional::linear(torch::nn::functional::linear(dropped, lora_A), lora_B) * shape_.scaling;
}

torch::Tensor LoraAdapter::direction(const torch::Tensor& base_weight) {
  if (shape_.rank == 0) return base_weight;
  return base_weight + torch::mm(lora_B, lora_A) * shape_.scaling;
}

torch::Tensor LoraAdapter::forward(const torch::Tensor& x, const torch::Tensor& base_weight) {
  auto y = torch::nn::functional::linear(x, base_weight);
  auto delta = low_rank_path(x);
  return delta.defined() ? y + delta : y;
}

torch::Tensor LoraAdapter::merged_weight(const torch::Tensor& base_weight) { return direction(base_weight); }

DecomposedAdapter::DecomposedAdapter(Kind kind, const LowRankShape& shape, const torch::Tensor& base_weight,
                                     torch::Generator generator, bool detach_norms, BoraOrder order)
    : LoraAdapter(shape, base_weight, generator), kind_(kind), detach_norms_(detach_norms), order_(order) {
  torch::NoGradGuard no_grad;
  auto w0 = base_weight.detach();
  magnitude = register_parameter("magnitude", row_norms(w0).clone());
  if (kind_ == Kind::bora) magnitude_in = register_parameter("magnitude_in", col_norms(w0).clone());
}

DecomposedAdapter::Scales DecomposedAdapter::scales(const torch::Tensor& base_weight) {
  // The divisors, from V = W0 + sBA; built without autograd when detached (the norms are constants then).
  auto divisors = [&]() -> BoraDivisors {
    auto V = direction(base_weight);
    if (kind_ == Kind::dora) return {row_norms(V), {}};
    return bora_divisors(V, magnitude, magnitude_in, order_);
  };
  BoraDivisors d;
  if (detach_norms_) {
    torch::NoGradGuard no_grad;
    d = divisors();
  } else {
    d = divisors();
  }
  Scales s;
  s.out = magnitude / d.row;
  if (kind_ == Kind::bora) s.in = magnitude_in / d.col;
  return s;
}

torch::Tensor DecomposedAdapter::forward(const torch::Tensor& x, const torch::Tensor& base_weight) {
  Scales s = scales(base_weight);
  auto input = s.in.defined() ? x * s.in : x;
  auto y = torch::nn::functional::linear(input, base_weight);
  auto delta = low_rank_path(input);
  if (delta.defined()) y = y + delta;
  return y * s.out;
}

torch::Tensor DecomposedAdapter::merged_weight(const torch::Tensor& base_weight) {
  Scales s = scales(base_weight);
  auto w = direction(base_weight) * s.out.unsqueeze(1);
  return s.in.defined() ? w * s.in.unsqueeze(0) : w;
}

}  // namespace peftlab
