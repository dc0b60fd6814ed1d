#include "methods/dora.h"

#include <torch/csrc/autograd/custom_function.h>

#include "methods/peft_format.h"

namespace peftlab {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// t * s, s broadcast along t's last dimension. Autograd's own mul would keep t (the pre-scale activation)
// for s's gradient, sum over rows of g * t; this keeps the product instead and recovers t = product / s. The
// product is the tensor the next operation usually keeps anyway (attention keeps v, SwiGLU keeps gate and up;
// the low-rank path keeps BoRA's scaled input), so rescaling costs DoRA and BoRA no activation of their own
// there. When s has a zero (t is not recoverable) or the product has another dtype than t (bf16 autocast:
// float32 product of a bfloat16 t), t is kept, as mul would.
class ScaleLastDim : public torch::autograd::Function<ScaleLastDim> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& t, const torch::Tensor& s) {
    auto product = t * s;
    const bool keep_product = product.scalar_type() == t.scalar_type() && !(s == 0).any().item<bool>();
    ctx->saved_data["keep_product"] = keep_product;
    ctx->save_for_backward({keep_product ? product : t, s});
    return product;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& kept = saved[0];
    const auto& s = saved[1];
    const auto& g = grads[0];
    torch::Tensor grad_t, grad_s;
    if (ctx->needs_input_grad(0)) grad_t = g * s;
    if (ctx->needs_input_grad(1)) {
      grad_s = (g * kept).reshape({-1, s.size(0)}).sum(0);
      if (ctx->saved_data["keep_product"].toBool()) grad_s = grad_s / s;
      grad_s = grad_s.to(s.scalar_type());
    }
    return {grad_t, grad_s};
  }
};

torch::Tensor scale_last_dim(const torch::Tensor& t, const torch::Tensor& s) {
  const bool recording = torch::GradMode::is_enabled() && (t.requires_grad() || s.requires_grad());
  return recording ? ScaleLastDim::apply(t, s) : t * s;  // evaluation keeps nothing: plain mul
}

}  // namespace

DoraAdapter::DoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator,
                         bool detach_norms)
    : LoraAdapter(shape, base_weight, generator), detach_norms_(detach_norms) {
  torch::NoGradGuard no_grad;
  magnitude = register_parameter("magnitude", base_weight.detach().norm(2, {1}).clone());
}

NormDivisors DoraAdapter::divisors(const torch::Tensor& V) { return {V.norm(2, {1}), {}}; }

DoraAdapter::Scales DoraAdapter::scales(const torch::Tensor& base_weight) {
  NormDivisors d;
  if (detach_norms_) {
    torch::NoGradGuard no_grad;
    d = divisors(direction(base_weight));
  } else {
    d = divisors(direction(base_weight));
  }
  // The magnitudes train: they are divided here, with autograd on.
  return {magnitude / d.row, input_scale(d)};
}

torch::Tensor DoraAdapter::forward(const torch::Tensor& x, const torch::Tensor& base_weight) {
  Scales s = scales(base_weight);
  auto input = s.in.defined() ? scale_last_dim(x, s.in) : x;
  auto y = torch::nn::functional::linear(input, base_weight);
  auto delta = low_rank_path(input);
  if (delta.defined()) y = y + delta;
  return scale_last_dim(y, s.out);
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
    // Plus V = W0 + s B A, built once per step for the norms.
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
