#include "methods/method.h"

#include <cmath>

#include <fmt/format.h>

namespace peftlab {

namespace {

std::regex compile_regex(const std::string& pattern, const std::string& file, long line, const std::string& what) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw InputError(file, fmt::format("{}: invalid regular expression '{}': {}", what, pattern, e.what()), line);
  }
}

std::vector<std::string> read_targets(YAML::Node node, const std::string& file) {
  long line = Options::line_of(node);
  if (node.IsScalar()) return {node.Scalar()};
  if (!node.IsSequence() || node.size() == 0)
    throw InputError(file, "method.targets: expected a module name, 'all-linear', 'regex:...' or a non-empty list",
                     line);
  std::vector<std::string> targets;
  for (const auto& item : node) {
    if (!item.IsScalar()) throw InputError(file, "method.targets: expected strings", Options::line_of(item));
    targets.push_back(item.Scalar());
  }
  return targets;
}

}  // namespace

bool RankOverride::matches(const std::string& slot_name) const {
  // PEFT's rank_pattern rule, re.match(rf"(.*\.)?({key})$", name), on our slot name or PEFT's module name
  // ("model." + slot), so patterns read from a PEFT adapter_config.json apply as they do there.
  std::regex re("(.*\\.)?(" + pattern + ")", std::regex::ECMAScript);
  return std::regex_match(slot_name, re) || std::regex_match("model." + slot_name, re);
}

void Method::read_common(Options& options) {
  file_ = options.file();
  label_ = options.get<std::string>("label", "");
}

void Method::read_rank_dropout_targets(Options& options, int64_t min_rank) {
  read_common(options);
  auto& o = options_;
  o.rank = options.get<int64_t>("rank", o.rank);
  o.rank_line = Options::line_of(options.node()["rank"]);
  if (o.rank < min_rank)
    throw InputError(file_, fmt::format("{}.rank: must be at least {}, got {}", options.path(), min_rank, o.rank),
                     o.rank_line ? o.rank_line : options.line());
  o.dropout = options.get<double>("dropout", o.dropout);
  if (o.dropout < 0 || o.dropout >= 1)
    throw InputError(file_, fmt::format("{}.dropout: must be in [0, 1), got {}", options.path(), o.dropout),
                     Options::line_of(options.node()["dropout"]));
  if (YAML::Node targets = options.raw("targets"); targets && !targets.IsNull()) {
    o.targets = read_targets(targets, file_);
    o.targets_line = Options::line_of(targets);
    for (const auto& t : o.targets)
      if (t.rfind("regex:", 0) == 0) compile_regex(t.substr(6), file_, o.targets_line, options.path() + ".targets");
  }
}

void Method::read_low_rank(Options& options, int64_t min_rank) {
  read_rank_dropout_targets(options, min_rank);
  auto& o = options_;
  o.alpha = options.get<double>("alpha", o.alpha);
  // scaling = alpha / rank multiplies the update: NaN, 0 or a negative alpha trains nothing or diverges.
  if (!(o.alpha > 0) || !std::isfinite(o.alpha))
    throw InputError(file_, fmt::format("{}.alpha: must be a positive number, got {}", options.path(), o.alpha),
                     Options::line_of(options.node()["alpha"]));
  o.rslora = options.get<bool>("rslora", o.rslora);
  auto init = options.get<std::string>("init_a", "kaiming");
  if (init == "kaiming") o.init_a = InitA::kaiming_uniform;
  else if (init == "gaussian") o.init_a = InitA::gaussian;
  else
    throw InputError(file_, fmt::format("{}.init_a: expected 'kaiming' or 'gaussian', got '{}'", options.path(), init),
                     Options::line_of(options.node()["init_a"]));
  YAML::Node overrides = options.raw("overrides");
  if (overrides && !overrides.IsNull()) {
    if (!overrides.IsSequence())
      throw InputError(file_, options.path() + ".overrides: expected a list of {pattern, rank, alpha}",
                       Options::line_of(overrides));
    for (size_t i = 0; i < overrides.size(); ++i) {
      Options entry(overrides[i], file_, fmt::format("{}.overrides[{}]", options.path(), i));
      RankOverride r;
      r.pattern = entry.require<std::string>("pattern");
      r.rank = entry.get_optional<int64_t>("rank");
      r.alpha = entry.get_optional<double>("alpha");
      if (r.alpha && (!(*r.alpha > 0) || !std::isfinite(*r.alpha)))
        throw InputError(file_, fmt::format("{}.alpha: must be a positive number, got {}", entry.path(), *r.alpha),
                         entry.line());
      r.line = entry.line();
      entry.finish();
      compile_regex(r.pattern, file_, r.line, entry.path() + ".pattern");
      if (r.rank && *r.rank < min_rank)
        throw InputError(file_, fmt::format("{}.rank: must be at least {}, got {}", entry.path(), min_rank, *r.rank),
                         r.line);
      o.overrides.push_back(r);
    }
  }
}

std::string Method::low_rank_label() const {
  std::string label = fmt::format("{}-r{}", name(), options_.rank);
  if (options_.rslora) label += "-rslora";
  if (options_.init_a == InitA::gaussian) label += "-gaussian";
  return label;
}

SharedState Method::make_shared_state(const std::vector<SlotPlan>&, const torch::TensorOptions&,
                                      torch::Generator) const {
  return nullptr;
}

double Method::adapter_step_flops(int64_t in, int64_t out, int64_t rank, double tokens) const {
  // The low-rank path x A^T B^T: forward, input gradient and weight gradients, each 2 tokens r (in + out).
  return 3.0 * 2.0 * tokens * static_cast<double>(rank) * static_cast<double>(in + out);
}

nlohmann::json Method::peft_config_fields() const {
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["r"] = options_.rank;
  j["lora_alpha"] = options_.alpha;
  j["lora_dropout"] = options_.dropout;
  j["use_rslora"] = options_.rslora;
  j["use_dora"] = false;
  j["init_lora_weights"] = options_.init_a == InitA::gaussian ? nlohmann::json("gaussian") : nlohmann::json(true);
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  return j;
}

std::vector<PeftTensor> Method::peft_tensors(Adapter& adapter) const {
  std::vector<PeftTensor> tensors;
  auto params = adapter.named_parameters(/*recurse=*/false);
  if (params.contains("lora_A")) tensors.push_back({"lora_A.weight", params["lora_A"], false});
  if (params.contains("lora_B")) tensors.push_back({"lora_B.weight", params["lora_B"], true});
  return tensors;
}

nlohmann::json Method::to_json() const {
  nlohmann::json j;
  j["name"] = name();
  if (!label_.empty()) j["label"] = label_;
  if (trains_base_weights()) return j;
  j["rank"] = options_.rank;
  j["alpha"] = options_.alpha;
  j["dropout"] = options_.dropout;
  if (!options_.targets.empty()) j["targets"] = options_.targets;
  j["rslora"] = options_.rslora;
  j["init_a"] = options_.init_a == InitA::gaussian ? "gaussian" : "kaiming";
  if (!options_.overrides.empty()) {
    auto& list = j["overrides"] = nlohmann::json::array();
    for (const auto& r : options_.overrides) {
      nlohmann::json entry{{"pattern", r.pattern}};
      if (r.rank) entry["rank"] = *r.rank;
      if (r.alpha) entry["alpha"] = *r.alpha;
      list.push_back(entry);
    }
  }
  return j;
}

}  // namespace peftlab
