// DoRA (Liu et al., 2024): W' = diag(m) V / ||V||_row with V = W0 + s B A and a trainable magnitude m (out),
// initialised to W0's row norms. The forward never builds W': it scales the output of the frozen matmul plus
// the low-rank path, y = (m / ||V||_row) * (x W0^T + s B(A(dropout(x)))), as one autograd node
// (methods/low_rank_linear.h), with the norms computed once per forward, as constants (no gradient
// through them, the paper's section 4.3) unless detach_norm is false.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>

#include "core/options.h"
#include "methods/lora.h"

namespace peftlab {

// The norms the magnitudes are divided by: row (out) always, col (in) for BoRA.
struct NormDivisors {
  torch::Tensor row, col;
};

class DoraAdapter : public LoraAdapter {
 public:
  DoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator,
              bool detach_norms);

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base_weight) override;
  torch::Tensor merged_weight(const torch::Tensor& base_weight) override;

  torch::Tensor magnitude;  // m (DoRA) / m_out (BoRA), (out)

 protected:
  // The divisors from V = W0 + s B A (DoRA: V's row norms), through direction_norms (V is not built). Called
  // with autograd off when the norms are detached.
  virtual NormDivisors divisors(const torch::Tensor& base_weight);
  // The scale of the input, from the divisors (BoRA: m_in / col); undefined for DoRA.
  virtual torch::Tensor input_scale(const NormDivisors& divisors) { return {}; }

 private:
  // The scales around the matmul: y = out * ((in * x) W0^T + low-rank path(in * x)).
  struct Scales {
    torch::Tensor out, in;
  };
  Scales scales(const torch::Tensor& base_weight);
  bool detach_norms_;
};

std::unique_ptr<Method> make_dora_method(Options& options);
// The method mapping of an adapter_config.json that PEFT wrote for DoRA (LoRA with use_dora); nullopt otherwise.
std::optional<YAML::Node> dora_from_peft_config(const nlohmann::json& config, const std::string& file);

}  // namespace peftlab
