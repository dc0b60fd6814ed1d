// VeRA (Kopiczko et al., 2024): one pair of frozen random matrices shared by every adapted slot, and two
// trainable vectors per slot. A (r, in_max) and B (out_max, r) are drawn once per model, Kaiming-uniform with
// gain sqrt(2) (bounds sqrt(6 / in_max) and sqrt(6 / r)); a slot of shape (out, in) uses their leading blocks
// A_s = A[:, :in], B_s = B[:out, :], as PEFT does. W' = W0 + diag(lambda_b) B_s diag(lambda_d) A_s with
// lambda_b = 0 (out) and lambda_d = d_initial (r) at initialisation, so W' = W0 there.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>

#include "core/adaptable_linear.h"
#include "core/options.h"
#include "methods/method.h"

namespace peftlab {

// The frozen projections every VeRA adapter of one model shares (buffers vera_A, vera_B).
class VeraProjections : public torch::nn::Module {
 public:
  VeraProjections(int64_t rank, int64_t max_in, int64_t max_out, const torch::TensorOptions& options,
                  torch::Generator generator);
  torch::Tensor vera_A, vera_B;
};

// y = x W0^T + lambda_b * ((lambda_d * (dropout(x) A_s^T)) B_s^T).
class VeraAdapter : public Adapter {
 public:
  VeraAdapter(std::shared_ptr<VeraProjections> projections, int64_t in_features, int64_t out_features, int64_t rank,
              double d_initial, double dropout, const torch::TensorOptions& options);

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base_weight) override;
  torch::Tensor merged_weight(const torch::Tensor& base_weight) override;

  torch::Tensor lambda_b, lambda_d;  // (out), (r): the trainable vectors

 private:
  torch::Tensor a() const;  // A_s (r, in)
  torch::Tensor b() const;  // B_s (out, r)
  std::shared_ptr<VeraProjections> projections_;
  int64_t in_features_, out_features_;
  double dropout_;
};

std::unique_ptr<Method> make_vera_method(Options& options);
// The method mapping of an adapter_config.json with PEFT's peft_type "VERA"; nullopt otherwise.
std::optional<YAML::Node> vera_from_peft_config(const nlohmann::json& config, const std::string& file);

}  // namespace peftlab
