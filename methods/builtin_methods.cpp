#include "methods/builtin_methods.h"

#include <fmt/format.h>

namespace peftlab {

namespace {

LowRankShape shape_of(const SlotPlan& plan, const LowRankOptions& options) {
  LowRankShape shape;
  shape.in_features = plan.in_features;
  shape.out_features = plan.out_features;
  shape.rank = plan.rank;
  shape.scaling = plan.scaling;
  shape.dropout = options.dropout;
  shape.init_a = options.init_a;
  return shape;
}

std::string low_rank_label(const std::string& name, const LowRankOptions& o) {
  std::string label = fmt::format("{}-r{}", name, o.rank);
  if (o.rslora) label += "-rslora";
  if (o.init_a == InitA::gaussian) label += "-gaussian";
  return label;
}

class FullMethod : public Method {
 public:
  explicit FullMethod(Options& options) { read_common(options); }
  std::string name() const override { return "full"; }
  bool trains_base_weights() const override { return true; }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan&, const torch::Tensor&, torch::Generator) const override {
    return nullptr;
  }
  int64_t adapter_parameter_count(int64_t, int64_t, int64_t) const override { return 0; }

 protected:
  std::string default_label() const override { return "full"; }
};

class LoraMethod : public Method {
 public:
  explicit LoraMethod(Options& options) { read_low_rank(options, 1); }
  std::string name() const override { return "lora"; }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator) const override {
    return std::make_shared<LoraAdapter>(shape_of(plan, options_), base_weight, generator);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override { return rank * (in + out); }

 protected:
  std::string default_label() const override { return low_rank_label("lora", options_); }
};

class DoraMethod : public Method {
 public:
  explicit DoraMethod(Options& options) {
    read_low_rank(options, 0);
    detach_norm_ = options.get<bool>("detach_norm", true);
  }
  std::string name() const override { return "dora"; }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator) const override {
    return std::make_shared<DecomposedAdapter>(DecomposedAdapter::Kind::dora, shape_of(plan, options_), base_weight,
                                               generator, detach_norm_);
  }
  int64_t adapter_parameter_count(int64_t in, int64_t out, int64_t rank) const override {
    return rank * (in + out) + out;
  }
  nlohmann::json to_json() const override {
    auto j = Method::to_json();
    j["detach_norm"] = detach_norm_;
    return j;
  }
  bool detach_norm() const { return detach_norm_; }

 protected:
  std::string default_label() const override {
    return low_rank_label("dora", options_) + (detach_norm_ ? "" : "-exactnorm");
  }

 private:
  bool detach_norm_ = true;
};

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
  std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                        torch::Generator generator) const override {
    return std::make_shared<DecomposedAdapter>(DecomposedAdapter::Kind::bora, shape_of(plan, options_), base_weight,
                                               generator, detach_norms_, order_);
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

 protected:
  std::string default_label() const override {
    return low_rank_label("bora", options_) + (order_ == BoraOrder::in_first ? "-in_first" : "") +
           (detach_norms_ ? "" : "-exactnorm");
  }

 private:
  bool detach_norms_ = true;
  BoraOrder order_ = BoraOrder::out_first;
};

}  // namespace

std::unique_ptr<Method> make_full_method(Options& options) { return std::make_unique<FullMethod>(options); }
std::unique_ptr<Method> make_lora_method(Options& options) { return std::make_unique<LoraMethod>(options); }
std::unique_ptr<Method> make_dora_method(Options& options) { return std::make_unique<DoraMethod>(options); }
std::unique_ptr<Method> make_bora_method(Options& options) { return std::make_unique<BoraMethod>(options); }

}  // namespace peftlab
