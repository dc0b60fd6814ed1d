// LoRA (Hu et al., 2021): W' = W0 + s B A with W0 (out, in) frozen, A (r, in) drawn at init, B (out, r) zero at
// init, s = alpha / r (rsLoRA: alpha / sqrt(r)). Its adapter is also the base of DoRA's and BoRA's, which
// share A, B, s and the dropout on the low-rank path.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>

#include "core/adaptable_linear.h"
#include "core/options.h"
#include "methods/method.h"

namespace peftlab {

// Shape and hyper-parameters of one low-rank adapter.
struct LowRankShape {
  int64_t in_features = 0, out_features = 0;
  int64_t rank = 0;        // 0: no low-rank path (DoRA/BoRA's magnitude-only ablation)
  double scaling = 1.0;    // s
  double dropout = 0.0;
  InitA init_a = InitA::kaiming_uniform;
};
LowRankShape low_rank_shape(const SlotPlan& plan, const LowRankOptions& options);

// y = x W0^T + s B(A(dropout(x))), as one autograd node (methods/low_rank_linear.h).
class LoraAdapter : public Adapter {
 public:
  // A is drawn from `generator`; tensors take W0's dtype and device.
  LoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator);

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base_weight) override;
  torch::Tensor merged_weight(const torch::Tensor& base_weight) override;

  int64_t rank() const { return shape_.rank; }
  double scaling() const { return shape_.scaling; }
  torch::Tensor lora_A, lora_B;  // undefined when rank == 0

  // ||V|| of V = W0 + s B A along `dim` (1: one norm per row, over the columns; 0: one per column, over the
  // rows), each squared entry weighted by `weights` (along `dim`; undefined: 1). V is never built: expanded,
  // sum_k w_k V_jk^2 = sum_k w_k W0_jk^2 + 2s B_j . (W0 diag(w) A^T)_j + s^2 B_j (A diag(w) A^T) B_j^T (rows; the
  // columns likewise with A and B exchanged), which reads W0 twice instead of writing and reading an (out, in)
  // tensor several times. Differentiable in A and B (exact-norm DoRA and BoRA).
  torch::Tensor direction_norms(const torch::Tensor& base_weight, int64_t dim, const torch::Tensor& weights = {}) const;

 protected:
  // V = W0 + s B A (W0 itself when rank == 0).
  torch::Tensor direction(const torch::Tensor& base_weight);
  LowRankShape shape_;
};

constexpr const char* kLoraName = "lora";
std::unique_ptr<Method> make_lora_method(Options& options);
// The method mapping of an adapter_config.json that PEFT wrote for a plain LoRA; nullopt for anything else.
std::optional<YAML::Node> lora_from_peft_config(const nlohmann::json& config, const std::string& file);

}  // namespace peftlab
