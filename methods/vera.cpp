#include "methods/vera.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "methods/peft_format.h"

namespace peftlab {

namespace {

// Kaiming-uniform with gain sqrt(2) over the tensor's fan-in (its second dimension), as PEFT draws them.
torch::Tensor kaiming_uniform(int64_t rows, int64_t cols, torch::Generator generator) {
  const double bound = std::sqrt(6.0 / static_cast<double>(cols));
  return torch::empty({rows, cols}, torch::kFloat64).uniform_(-bound, bound, generator);
}

}  // namespace

VeraProjections::VeraProjections(int64_t rank, int64_t max_in, int64_t max_out, const torch::TensorOptions& options,
                                 torch::Generator generator) {
  // Drawn in float64 on the CPU, then cast: the same projections for every dtype and device.
  auto a = kaiming_uniform(rank, max_in, generator);
  auto b = kaiming_uniform(max_out, rank, generator);
  vera_A = register_buffer("vera_A", a.to(options));
  vera_B = register_buffer("vera_B", b.to(options));
}

VeraAdapter::VeraAdapter(std::shared_ptr<VeraProjections> projections, int64_t in_features, int64_t out_features,
                         int64_t rank, double d_initial, double dropout, const torch::TensorOptions& options)
    : projections_(register_module("shared", std::move(projections))),
      in_features_(in_features),
      out_features_(out_features),
      dropout_(dropout) {
  lambda_b = register_parameter("lambda_b", torch::zeros({out_features}, options));
  lambda_d = register_parameter("lambda_d", torch::full({rank}, d_initial, options));
}

torch::Tensor VeraAdapter::a() const { return projections_->vera_A.narrow(1, 0, in_features_); }
torch::Tensor VeraAdapter::b() const { return projections_->vera_B.narrow(0, 0, out_features_); }

torch::Tensor VeraAdapter::forward(const torch::Tensor& x, const torch::Tensor& base_weight) {
  auto dropped = dropout_ > 0 ? torch::dropout(x, dropout_, is_training()) : x;
  auto inner = torch::nn::functional::linear(dropped, a()) * lambda_d;
  return torch::nn::functional::linear(x, base_weight) + torch::nn::functional::linear(inner, b()) * lambda_b;
}

torch::Tensor VeraAdapter::merged_weight(const torch::Tensor& base_weight) {
  return base_weight + torch::mm(lambda_b.unsqueeze(1) * b(), lambda_d.unsqueeze(1) * a());
}

namespace {

constexpr double kDefaultDInitial = 0.1;  // PEFT's d_initial

class VeraMethod : public Method {
 public:
  explicit VeraMethod(Options& options) {
    read_rank_dropout_targets(options, 1);
    d_initial_ = options.get<double>("d_initial", kDefaultDInitial);
    if (!std::isfinite(d_initial_))
      throw InputError(options.file(), fmt::format("{}.d_initial: must be a finite number", options.path()),
                       Options::line_of(options.node()["d_initial"]));
  }
  std::string name() const override { return "vera"; }
  std::string default_label() const override {
    return fmt::format("{}-r{}", name(), options_.rank) + (d_initial_ != kDefaultDInitial ? fmt::format("-d{}", d_initial_) : "");
  }
  SharedState make_shared_state(const std::vector<SlotPlan>& slots, const torch::TensorOptions& options,
                                torch::Generator generator) const override {
    int64_t max_in = 0, max_out = 0;
    for (const auto& s : slots) max_in = std::max(max_in, s.in_features), max_out = std::max(max_out, s.out_features);
    return std::make_shared<VeraProjections>(options_.rank, max_in, max_out, options, generator);
  }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight, torch::Generator,
                                        const SharedState& shared) const override {
    auto projections = std::dynamic_pointer_cast<VeraProjections>(shared);
    if (!projections) throw std::logic_error("vera: make_adapter needs the state of make_shared_state");
    return std::make_shared<VeraAdapter>(projections, plan.in_features, plan.out_features, plan.rank, d_initial_,
                                         options_.dropout, base_weight.options());
  }
  int64_t adapter_parameter_count(int64_t, int64_t out, int64_t rank) const override { return out + rank; }
  double adapter_step_flops(int64_t in, int64_t out, int64_t rank, double tokens) const override {
    // The path through the frozen A_s, B_s: forward and input gradient (no weight gradients), plus the vectors.
    return 2.0 * 2.0 * tokens * static_cast<double>(rank) * static_cast<double>(in + out) +
           6.0 * tokens * static_cast<double>(rank + out);
  }
  nlohmann::json to_json() const override {
    nlohmann::json j{{"name", name()}, {"rank", options_.rank}, {"dropout", options_.dropout}, {"d_initial", d_initial_}};
    if (!label_.empty()) j["label"] = label_;
    if (!options_.targets.empty()) j["targets"] = options_.targets;
    return j;
  }
  // PEFT's VeraConfig; the projections are saved (save_projection), so projection_prng_key is not needed to
  // rebuild them.
  nlohmann::json peft_config_fields() const override {
    return {{"peft_type", "VERA"},        {"r", options_.rank},         {"vera_dropout", options_.dropout},
            {"d_initial", d_initial_},    {"projection_prng_key", 0},   {"save_projection", true},
            {"init_weights", true},       {"bias", "none"},             {"fan_in_fan_out", false}};
  }
  std::vector<PeftTensor> peft_tensors(Adapter& adapter) const override {
    auto& vera = dynamic_cast<VeraAdapter&>(adapter);
    return {{"vera_lambda_b", vera.lambda_b, true}, {"vera_lambda_d", vera.lambda_d, false}};
  }
  std::vector<PeftTensor> peft_shared_tensors(const SharedState& shared) const override {
    auto& projections = dynamic_cast<VeraProjections&>(*shared);
    return {{"vera_A", projections.vera_A, false}, {"vera_B", projections.vera_B, true}};
  }

 private:
  double d_initial_ = kDefaultDInitial;
};

}  // namespace

std::unique_ptr<Method> make_vera_method(Options& options) { return std::make_unique<VeraMethod>(options); }

std::optional<YAML::Node> vera_from_peft_config(const nlohmann::json& config, const std::string& file) {
  if (config.value("peft_type", "") != "VERA") return std::nullopt;
  try {
    YAML::Node node;
    node["name"] = "vera";
    node["rank"] = config.at("r").get<int64_t>();
    node["dropout"] = config.value("vera_dropout", 0.0);
    node["d_initial"] = config.value("d_initial", kDefaultDInitial);
    if (auto targets = peft_targets(config, file)) node["targets"] = *targets;
    return node;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, fmt::format("unexpected value: {}", e.what()));
  }
}

}  // namespace peftlab
