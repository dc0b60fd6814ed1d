#include "methods/dora.h"

#include "methods/low_rank_linear.h"
#include "methods/peft_format.h"

namespace peftlab {

DoraAdapter::DoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator,
                         bool detach_norms)
    : LoraAdapter(shape, base_weight, generator), detach_norms_(detach_norms) {
  torch::NoGradGuard no_grad;
  magnitude = register_parameter("magnitude", base_weight.detach().norm(2, {1}).clone());
}

NormDivisors DoraAdapter::divisors(const torch::Tensor& base_weight) { return {direction_norms(base_weight, 1), {}}; }

DoraAdapter::Scales DoraAdapter::scales(const torch::Tensor& base_weight) {
  std::optional<torch::NoGradGuard> no_grad;
  if (detach_norms_) no_grad.emplace();
  const NormDivisors d = divisors(base_weight);
  no_grad.reset();
  // The magnitudes train: they are divided here, with autograd on.
  return {magnitude / d.row, input_scale(d)};
}

torch::Tensor DoraAdapter::forward(const torch::Tensor& x, const torch::Tensor& base_weight) {
  Scales s = scales(base_weight);
  return low_rank_linear(x, {base_weight, lora_A, lora_B, s.out, s.in, shape_.scaling, shape_.dropout, is_training()});
}

torch::Tensor DoraAdapter::merged_weight(const torch::Tensor& base_weight) {
  Scales s = scales(base_weight);
  auto w = direction(base_weight) * s.out.unsqueeze(1);
  return s.in.defined() ? w * s.in.unsqueeze(0) : w;
}

namespace {

class DoraMethod : public Method {
 public:
  explicit DoraMethod(Options& options) {
    read_low_rank(options, 0);
    detach_norm_ = options.get<bool>("detach_norm", true);
  }
  std::string name() const override { return "dora"; }
  std::string default_label() const override { return low_rank_label() + (detach_norm_ ? "" : "-exactnorm"); }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator, const SharedState&) const override {
    return std::make_shared<DoraAdapter>(low_rank_shape(plan, options_), base_weight, generator, detach_norm_);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override {
    return rank * (in + out) + out;
  }
  double adapter_step_flops(int64_t in, int64_t out, int64_t rank, double tokens) const override {
    // Plus the norm of V = W0 + s B A once per step: its cross term W0 A^T.
    return Method::adapter_step_flops(in, out, rank, tokens) + 2.0 * static_cast<double>(in * out * rank);
  }
  nlohmann::json to_json() const override {
    auto j = Method::to_json();
    j["detach_norm"] = detach_norm_;
    return j;
  }
  nlohmann::json peft_config_fields() const override {
    auto j = Method::peft_config_fields();
    j["use_dora"] = true;
    return j;
  }
  std::vector<PeftTensor> peft_tensors(Adapter& adapter) const override {
    auto tensors = Method::peft_tensors(adapter);
    tensors.push_back({"lora_magnitude_vector", adapter.named_parameters(false)["magnitude"], true});
    return tensors;
  }

 private:
  bool detach_norm_ = true;
};

}  // namespace

std::unique_ptr<Method> make_dora_method(Options& options) { return std::make_unique<DoraMethod>(options); }

std::optional<YAML::Node> dora_from_peft_config(const nlohmann::json& config, const std::string& file) {
  if (config.value("peft_type", "") != "LORA" || !config.value("use_dora", false)) return std::nullopt;
  YAML::Node node = low_rank_mapping_from_peft(config, file);
  node["name"] = "dora";
  return node;
}

}  // namespace peftlab
