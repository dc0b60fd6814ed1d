#include "methods/full.h"

namespace peftlab {

namespace {

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

}  // namespace

std::unique_ptr<Method> make_full_method(Options& options) { return std::make_unique<FullMethod>(options); }

}  // namespace peftlab
