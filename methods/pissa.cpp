#include "methods/pissa.h"

#include <cmath>

namespace peftlab {

PissaAdapter::PissaAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator)
    : LoraAdapter(shape, base_weight, generator) {
  torch::NoGradGuard no_grad;
  // The SVD in float64 on the CPU, whatever the model's dtype and device: the same A0, B0 everywhere.
  const auto w = base_weight.detach().to(torch::kCPU, torch::kFloat64);
  auto [U, S, Vh] = torch::linalg::svd(w, /*full_matrices=*/false, c10::nullopt);
  const int64_t r = shape.rank;
  auto root = torch::sqrt(S.narrow(0, 0, r) / shape.scaling);
  auto a = root.unsqueeze(1) * Vh.narrow(0, 0, r);  // diag(sqrt(S_r / s)) V_r^T
  auto b = U.narrow(1, 0, r) * root.unsqueeze(0);   // U_r diag(sqrt(S_r / s))
  const auto options = base_weight.options();
  lora_A.copy_(a.to(options));
  lora_B.copy_(b.to(options));
  initial_A = register_buffer("initial_A", lora_A.detach().clone());
  initial_B = register_buffer("initial_B", lora_B.detach().clone());
  // The residual with the A0, B0 the model holds, so that W_res + s B0 A0 is W0 as closely as the dtype allows.
  base_weight.copy_((w - shape.scaling * torch::mm(initial_B.to(torch::kCPU, torch::kFloat64),
                                                   initial_A.to(torch::kCPU, torch::kFloat64)))
                        .to(options));
}

torch::Tensor PissaAdapter::pretrained_weight(const torch::Tensor& base_weight) {
  return base_weight + torch::mm(initial_B, initial_A) * scaling();
}

namespace {

class PissaMethod : public Method {
 public:
  explicit PissaMethod(Options& options) { read_low_rank(options, 1); }
  std::string name() const override { return "pissa"; }
  std::string default_label() const override { return low_rank_label(); }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator, const SharedState&) const override {
    return std::make_shared<PissaAdapter>(low_rank_shape(plan, options_), base_weight, generator);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override { return rank * (in + out); }

  // A LoRA of rank 2r on the pretrained W0: s (B A - B0 A0) = s' [B, -B0] [A; A0] with s' = s, so alpha doubles
  // (rsLoRA: alpha * sqrt(2)), as do the ranks and alphas of the overrides (PEFT's save_pretrained conversion).
  nlohmann::json peft_equivalent() const override {
    auto j = to_json();
    j["name"] = kLoraName;
    j.erase("init_a");  // A and B are stored: how they were drawn no longer matters
    const double factor = options_.rslora ? std::sqrt(2.0) : 2.0;
    j["rank"] = 2 * options_.rank;
    j["alpha"] = factor * options_.alpha;
    if (j.contains("overrides"))
      for (auto& o : j["overrides"]) {
        if (o.contains("rank")) o["rank"] = 2 * o["rank"].get<int64_t>();
        if (o.contains("alpha")) o["alpha"] = factor * o["alpha"].get<double>();
      }
    return j;
  }
  std::vector<PeftTensor> peft_tensors(Adapter& adapter) const override {
    auto& pissa = dynamic_cast<PissaAdapter&>(adapter);
    torch::NoGradGuard no_grad;
    return {{"lora_A.weight", torch::cat({pissa.lora_A, pissa.initial_A}, 0), false},
            {"lora_B.weight", torch::cat({pissa.lora_B, -pissa.initial_B}, 1), true}};
  }
};

}  // namespace

std::unique_ptr<Method> make_pissa_method(Options& options) { return std::make_unique<PissaMethod>(options); }

}  // namespace peftlab
