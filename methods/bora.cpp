#include "methods/bora.h"

#include <fmt/format.h>

#include "core/errors.h"

namespace peftlab {

BoraDivisors bora_divisors(const LoraAdapter& direction, const torch::Tensor& base_weight, const torch::Tensor& m_out,
                           const torch::Tensor& m_in, BoraOrder order) {
  BoraDivisors d;
  if (order == BoraOrder::out_first) {
    d.row = direction.direction_norms(base_weight, 1);
    d.col = direction.direction_norms(base_weight, 0, (m_out / d.row).square());  // of diag(m_out / row) V
  } else {
    d.col = direction.direction_norms(base_weight, 0);
    d.row = direction.direction_norms(base_weight, 1, (m_in / d.col).square());   // of V diag(m_in / col)
  }
  return d;
}

BoraAdapter::BoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator,
                         bool detach_norms, BoraOrder order)
    : DoraAdapter(shape, base_weight, generator, detach_norms), order_(order) {
  torch::NoGradGuard no_grad;
  magnitude_in = register_parameter("magnitude_in", base_weight.detach().norm(2, {0}).clone());
}

NormDivisors BoraAdapter::divisors(const torch::Tensor& base_weight) {
  return bora_divisors(*this, base_weight, magnitude, magnitude_in, order_);
}

namespace {

class BoraMethod : public Method {
 public:
  explicit BoraMethod(Options& options) {
    read_low_rank(options, 0);
    detach_norms_ = options.get<bool>("detach_norms", true);
    auto order = options.get<std::string>("order", "out_first");
    if (order == "out_first") order_ = BoraOrder::out_first;
    else if (order == "in_first") order_ = BoraOrder::in_first;
    else
      throw InputError(options.file(),
                       fmt::format("{}.order: expected 'out_first' or 'in_first', got '{}'", options.path(), order),
                       Options::line_of(options.node()["order"]));
  }
  std::string name() const override { return "bora"; }
  std::string default_label() const override {
    return low_rank_label() + (order_ == BoraOrder::in_first ? "-in_first" : "") +
           (detach_norms_ ? "" : "-exactnorm");
  }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator, const SharedState&) const override {
    return std::make_shared<BoraAdapter>(low_rank_shape(plan, options_), base_weight, generator, detach_norms_, order_);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override {
    return rank * (in + out) + out + in;
  }
  nlohmann::json to_json() const override {
    auto j = Method::to_json();
    j["detach_norms"] = detach_norms_;
    j["order"] = order_ == BoraOrder::out_first ? "out_first" : "in_first";
    return j;
  }
  double adapter_step_flops(int64_t in, int64_t out, int64_t rank, double tokens) const override {
    // Plus the two norms of V = W0 + s B A once per step: their cross terms W0 A^T and W0^T B.
    return Method::adapter_step_flops(in, out, rank, tokens) + 4.0 * static_cast<double>(in * out * rank);
  }
  // PEFT's LoRA fields and DoRA's keys, m_in under peftlab's own key: PEFT itself cannot load BoRA (the
  // "peftlab" block of the config can).
  std::vector<PeftTensor> peft_tensors(Adapter& adapter) const override {
    auto tensors = Method::peft_tensors(adapter);
    auto params = adapter.named_parameters(false);
    tensors.push_back({"lora_magnitude_vector", params["magnitude"], true});
    tensors.push_back({"lora_magnitude_vector_in", params["magnitude_in"], false});
    return tensors;
  }

 private:
  bool detach_norms_ = true;
  BoraOrder order_ = BoraOrder::out_first;
};

}  // namespace

std::unique_ptr<Method> make_bora_method(Options& options) { return std::make_unique<BoraMethod>(options); }

}  // namespace peftlab
