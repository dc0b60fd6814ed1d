#include "methods/plan.h"

#include <fmt/format.h>

#include <map>
#include <tuple>

namespace peftlab {

std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string describe_plan(const BackboneConfig& config, const Method& method) {
  return describe_plan(config, plan_adaptation(config, method), method);
}

std::string describe_plan(const BackboneConfig& config, const AdaptationPlan& plan, const Method& method) {
  std::string text = fmt::format("method: {} ({})\n", plan.method_label, method.name());
  text += fmt::format("model: {}: {} parameters\n", config.describe(), with_thousands(plan.backbone_params));
  if (method.trains_base_weights()) {
    text += "adapted modules: none (every backbone weight trains)\n";
  } else {
    // One line per (module, shape, rank, alpha), in slot order of first appearance.
    using Key = std::tuple<std::string, int64_t, int64_t, int64_t, double>;
    std::vector<Key> order;
    std::map<Key, std::pair<int64_t, const SlotPlan*>> groups;
    for (const auto& s : plan.slots) {
      Key key{s.module, s.out_features, s.in_features, s.rank, s.alpha};
      auto [it, inserted] = groups.try_emplace(key, 0, &s);
      if (inserted) order.push_back(key);
      ++it->second.first;
    }
    text += fmt::format("adapted modules: {}\n", plan.slots.size());
    for (const auto& key : order) {
      const auto& [count, s] = groups.at(key);
      text += fmt::format("  {:<10} x{:<4} ({} x {})  rank {}  alpha {:g}  scaling {:g}  trainable {} each\n",
                          s->module, count, s->out_features, s->in_features, s->rank, s->alpha, s->scaling,
                          with_thousands(s->trainable_params));
    }
  }
  text += fmt::format("trainable parameters: {} of {} ({:.2f}%)\n", with_thousands(plan.trainable_params),
                      with_thousands(plan.backbone_params + plan.added_params), 100.0 * plan.trainable_share());
  text += "  share = trainable / (backbone + adapter parameters), as HF PEFT's print_trainable_parameters\n";
  return text;
}

}  // namespace peftlab
