#include "methods/dora.h"

namespace peftlab {

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
  auto input = s.in.defined() ? x * s.in : x;
  auto y = torch::nn::functional::linear(input, base_weight);
  auto delta = low_rank_path(input);
  if (delta.defined()) y = y + delta;
  return y * s.out;
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
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator) const override {
    return std::make_shared<DoraAdapter>(low_rank_shape(plan, options_), base_weight, generator, detach_norm_);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override {
    return rank * (in + out) + out;
  }
  nlohmann::json to_json() const override {
    auto j = Method::to_json();
    j["detach_norm"] = detach_norm_;
    return j;
  }

 protected:
  std::string default_label() const override {
    return low_rank_label("dora", options_) + (detach_norm_ ? "" : "-exactnorm");
  }

 private:
  bool detach_norm_ = true;
};

}  // namespace

std::unique_ptr<Method> make_dora_method(Options& options) { return std::make_unique<DoraMethod>(options); }

}  // namespace peftlab
