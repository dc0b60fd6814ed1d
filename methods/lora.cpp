#include "methods/lora.h"

#include "methods/low_rank_linear.h"
#include "methods/peft_format.h"

#include <fmt/format.h>

#include <cmath>

namespace peftlab {

LowRankShape low_rank_shape(const SlotPlan& plan, const LowRankOptions& options) {
  LowRankShape shape;
  shape.in_features = plan.in_features;
  shape.out_features = plan.out_features;
  shape.rank = plan.rank;
  shape.scaling = plan.scaling;
  shape.dropout = options.dropout;
  shape.init_a = options.init_a;
  return shape;
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

torch::Tensor LoraAdapter::direction_norms(const torch::Tensor& base_weight, int64_t dim,
                                           const torch::Tensor& weights) const {
  // Written for rows (dim 1); columns are the same with W0 transposed and A, B exchanged.
  const bool rows = dim == 1;
  const auto W0 = rows ? base_weight : base_weight.t();
  auto squared = weights.defined() ? torch::mv(W0.square(), weights) : W0.norm(2, {1}).square();
  if (shape_.rank > 0) {
    const auto left = rows ? lora_B : lora_A.t();   // (n, r): the factor indexed like the norms
    const auto right = rows ? lora_A : lora_B.t();  // (r, k): the factor indexed like the summed dimension
    const auto weighted = weights.defined() ? right * weights.unsqueeze(0) : right;
    const double s = shape_.scaling;
    const auto cross = (left * torch::mm(W0, weighted.t())).sum(1);
    const auto quadratic = (torch::mm(left, torch::mm(weighted, right.t())) * left).sum(1);
    squared = squared + (2 * s) * cross + (s * s) * quadratic;
  }
  return squared.clamp_min(0).sqrt();
}

torch::Tensor LoraAdapter::direction(const torch::Tensor& base_weight) {
  if (shape_.rank == 0) return base_weight;
  return base_weight + torch::mm(lora_B, lora_A) * shape_.scaling;
}

torch::Tensor LoraAdapter::forward(const torch::Tensor& x, const torch::Tensor& base_weight) {
  return low_rank_linear(x, {base_weight, lora_A, lora_B, {}, {}, shape_.scaling, shape_.dropout, is_training()});
}

torch::Tensor LoraAdapter::merged_weight(const torch::Tensor& base_weight) { return direction(base_weight); }

namespace {

class LoraMethod : public Method {
 public:
  explicit LoraMethod(Options& options) { read_low_rank(options, 1); }
  std::string name() const override { return kLoraName; }
  std::string default_label() const override { return low_rank_label(); }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator, const SharedState&) const override {
    return std::make_shared<LoraAdapter>(low_rank_shape(plan, options_), base_weight, generator);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override { return rank * (in + out); }
};

}  // namespace

std::unique_ptr<Method> make_lora_method(Options& options) { return std::make_unique<LoraMethod>(options); }

std::optional<YAML::Node> lora_from_peft_config(const nlohmann::json& config, const std::string& file) {
  if (config.value("peft_type", "") != "LORA" || config.value("use_dora", false)) return std::nullopt;
  // Other initialisations (PEFT's SVD-based ones) leave adapters that apply to a rewritten base model.
  if (config.contains("init_lora_weights") && config["init_lora_weights"].is_string() &&
      config["init_lora_weights"] != "gaussian")
    return std::nullopt;
  YAML::Node node = low_rank_mapping_from_peft(config, file);
  node["name"] = kLoraName;
  return node;
}

}  // namespace peftlab
