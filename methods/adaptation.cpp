#include "methods/adaptation.h"

#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/suggest.h"

namespace peftlab {

namespace {

constexpr const char* kAllLinear = "all-linear";
constexpr const char* kRegexPrefix = "regex:";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

long target_line(const Method& method) {
  return method.options().targets_line ? method.options().targets_line : 0;
}

// The slots one target entry selects.
std::vector<size_t> select_slots(const BackboneConfig& config, const std::vector<SlotShape>& slots,
                                 const std::string& target, const Method& method) {
  std::vector<size_t> chosen;
  if (target == kAllLinear) {
    for (size_t i = 0; i < slots.size(); ++i) chosen.push_back(i);
    return chosen;
  }
  if (starts_with(target, kRegexPrefix)) {
    std::string pattern = target.substr(std::string(kRegexPrefix).size());
    std::regex re;
    try {
      re = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw InputError(method.source_file(),
                       fmt::format("method.targets: invalid regular expression '{}': {}", pattern, e.what()),
                       target_line(method));
    }
    for (size_t i = 0; i < slots.size(); ++i)
      if (std::regex_match(slots[i].name, re)) chosen.push_back(i);
    return chosen;
  }
  const auto modules = config.module_names();
  if (std::find(modules.begin(), modules.end(), target) == modules.end()) {
    auto known = modules;
    known.push_back(kAllLinear);
    throw InputError(method.source_file(),
                     "method.targets: " + unknown_name_message("target module", target, known) +
                         "; or use 'regex:<pattern>' over names like " + slots.front().name,
                     target_line(method));
  }
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].module == target) chosen.push_back(i);
  return chosen;
}

}  // namespace

std::vector<std::string> resolved_targets(const BackboneConfig& config, const Method& method) {
  const auto& targets = method.options().targets;
  return targets.empty() ? config.default_target_modules() : targets;
}

double AdaptationPlan::trainable_share() const {
  int64_t total = backbone_params + added_params;
  return total > 0 ? static_cast<double>(trainable_params) / static_cast<double>(total) : 0.0;
}

AdaptationPlan plan_adaptation(const BackboneConfig& config, const Method& method) {
  AdaptationPlan plan;
  plan.method_label = method.label();
  plan.backbone_params = config.parameter_count();
  if (method.trains_base_weights()) {
    plan.trainable_params = plan.backbone_params;
    return plan;
  }
  const auto& o = method.options();
  const auto all = config.slot_shapes();
  std::vector<bool> targeted(all.size(), false);
  for (const auto& target : resolved_targets(config, method)) {
    auto chosen = select_slots(config, all, target, method);
    if (chosen.empty())
      throw InputError(method.source_file(), fmt::format("method.targets: '{}' matches no module of the model", target),
                       target_line(method));
    for (size_t i : chosen) targeted[i] = true;
  }
  std::vector<bool> override_used(o.overrides.size(), false);
  for (size_t i = 0; i < all.size(); ++i) {
    if (!targeted[i]) continue;
    SlotPlan s;
    s.slot = all[i].name;
    s.module = all[i].module;
    s.in_features = all[i].in_features;
    s.out_features = all[i].out_features;
    s.rank = o.rank;
    s.alpha = o.alpha;
    long rank_line = o.rank_line;
    for (size_t k = 0; k < o.overrides.size(); ++k) {
      if (!o.overrides[k].matches(s.slot)) continue;
      override_used[k] = true;
      if (o.overrides[k].rank) s.rank = *o.overrides[k].rank, rank_line = o.overrides[k].line;
      if (o.overrides[k].alpha) s.alpha = *o.overrides[k].alpha;
      break;  // the first matching override wins, as PEFT's rank_pattern
    }
    if (s.rank > std::min(s.in_features, s.out_features))
      throw InputError(method.source_file(),
                       fmt::format("method.rank: rank {} exceeds min(in, out) = {} of {} ({} x {})", s.rank,
                                   std::min(s.in_features, s.out_features), s.slot, s.out_features, s.in_features),
                       rank_line);
    if (s.rank > 0) s.scaling = o.rslora ? s.alpha / std::sqrt(static_cast<double>(s.rank)) : s.alpha / s.rank;
    s.trainable_params = method.adapter_parameter_count(s.in_features, s.out_features, s.rank);
    plan.added_params += s.trainable_params;
    plan.slots.push_back(s);
  }
  for (size_t k = 0; k < o.overrides.size(); ++k)
    if (!override_used[k])
      throw InputError(method.source_file(),
                       fmt::format("method.overrides: pattern '{}' matches no targeted module", o.overrides[k].pattern),
                       o.overrides[k].line);
  plan.trainable_params = plan.added_params;
  return plan;
}

AdaptationPlan apply_method(BackboneImpl& model, const Method& method, torch::Generator generator) {
  AdaptationPlan plan = plan_adaptation(model.config(), method);
  for (auto& p : model.parameters()) p.set_requires_grad(method.trains_base_weights());
  if (plan.slots.empty()) return plan;
  // Method-level state first (drawn before any adapter), then the adapters slot by slot in model order. An
  // adapter may rewrite its slot's frozen weight (PiSSA's residual): no gradient is recorded for that.
  torch::NoGradGuard no_grad;
  const SharedState shared =
      method.make_shared_state(plan.slots, model.slot(plan.slots.front().slot)->weight.options(), generator);
  for (const auto& s : plan.slots) {
    auto slot = model.slot(s.slot);
    auto adapter = method.make_adapter(s, slot->weight, generator, shared);
    for (auto& p : adapter->parameters()) p.set_requires_grad(true);
    slot->attach(adapter);
  }
  return plan;
}

AdaptationPlan apply_method(BackboneImpl& model, const Method& method, uint64_t seed) {
  return apply_method(model, method, at::make_generator<at::CPUGeneratorImpl>(seed));
}

void merge_all(BackboneImpl& model) {
  for (auto& slot : model.slots()) slot->merge();
}

void unmerge_all(BackboneImpl& model) {
  for (auto& slot : model.slots()) slot->unmerge();
}

bool is_magnitude_parameter(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with("adapter.magnitude") || ends_with("adapter.magnitude_in");
}

ParameterGroups trainable_parameter_groups(const torch::nn::Module& model, const std::vector<std::string>& no_decay_patterns) {
  std::vector<std::regex> patterns(no_decay_patterns.begin(), no_decay_patterns.end());
  ParameterGroups groups;
  for (const auto& item : model.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const bool no_decay = std::any_of(patterns.begin(), patterns.end(),
                                      [&](const std::regex& p) { return std::regex_search(item.key(), p); });
    (no_decay ? groups.no_decay : groups.decay).push_back(item.value());
    (no_decay ? groups.no_decay_names : groups.decay_names).push_back(item.key());
  }
  return groups;
}

}  // namespace peftlab
