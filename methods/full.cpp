#include "methods/full.h"

namespace peftlab {

namespace {

class FullMethod : public Method {
 public:
  explicit FullMethod(Options& options) { read_common(options); }
  std::string name() const override { return "full"; }
  bool trains_base_weights() const override { return true; }
  std::string default_label() const override { return "full"; }
  std::shared_ptr<Adapter> make_adapter(const SlotPlan&, const torch::Tensor&, torch::Generator,
                                        const SharedState&) const override {
    return nullptr;
  }
  int64_t adapter_parameter_count(int64_t, int64_t, int64_t) const override { return 0; }
  double adapter_step_flops(int64_t, int64_t, int64_t, double) const override { return 0; }
};

}  // namespace

std::unique_ptr<Method> make_full_method(Options& options) { return std::make_unique<FullMethod>(options); }

}  // namespace peftlab
