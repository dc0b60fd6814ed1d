#include "methods/peft_format.h"

#include <fmt/format.h>

#include <fstream>
#include <set>

#include "core/safetensors.h"
#include "methods/adaptation.h"
#include "methods/registry.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";
constexpr const char* kModulePrefix = "base_model.model.";

// A tensor between the backbone's row order and Hugging Face's (output-row tensors of interleaved-rotary models).
torch::Tensor to_layout(const BackboneConfig& config, const std::string& slot, const PeftTensor& t,
                        const torch::Tensor& value, bool to_hf) {
  return t.output_rows ? config.output_rows_to_hf(slot, value, to_hf) : value;
}

// Whether some planned slot's output rows are permuted between the layouts.
bool permutes_rows(const BackboneConfig& config, const AdaptationPlan& plan) {
  for (const auto& s : plan.slots) {
    auto rows = torch::arange(s.out_features, torch::kFloat64).unsqueeze(1);
    if (!torch::equal(config.output_rows_to_hf(s.slot, rows, true), rows)) return true;
  }
  return false;
}

// The state the method's adapters share (their submodule "shared"), or null.
SharedState shared_state(BackboneImpl& model, const AdaptationPlan& plan) {
  if (plan.slots.empty()) return nullptr;
  auto adapter = model.slot(plan.slots.front().slot)->adapter();
  if (!adapter) return nullptr;
  auto children = adapter->named_children();
  return children.contains("shared") ? children["shared"] : nullptr;
}

bool all_short_names(const std::vector<std::string>& targets, const std::vector<std::string>& modules) {
  for (const auto& t : targets)
    if (std::find(modules.begin(), modules.end(), t) == modules.end()) return false;
  return true;
}

nlohmann::json peft_config(const BackboneConfig& config, const Method& method, const AdaptationPlan& plan,
                           const PeftExportOptions& options) {
  const auto targets = resolved_targets(config, method);
  nlohmann::json j = method.peft_config_fields();
  j["task_type"] = options.task_type;
  j["base_model_name_or_path"] = options.base_model_name_or_path;
  if (targets == std::vector<std::string>{"all-linear"}) {
    j["target_modules"] = "all-linear";
  } else if (all_short_names(targets, config.module_names())) {
    j["target_modules"] = targets;
  } else {
    auto& list = j["target_modules"] = nlohmann::json::array();
    for (const auto& s : plan.slots) list.push_back(config.hf_module_name(s.slot));
  }
  if (j.contains("lora_alpha")) {
    // Per-module values that differ from the defaults, by full module name (exact under PEFT's suffix rule).
    const auto& o = method.options();
    j["rank_pattern"] = nlohmann::json::object();
    j["alpha_pattern"] = nlohmann::json::object();
    for (const auto& s : plan.slots) {
      if (s.rank != o.rank) j["rank_pattern"][config.hf_module_name(s.slot)] = s.rank;
      if (s.alpha != o.alpha) j["alpha_pattern"][config.hf_module_name(s.slot)] = s.alpha;
    }
  }
  if (!options.modules_to_save.empty()) {
    std::set<std::string> modules;
    for (const auto& [name, tensor] : options.modules_to_save) modules.insert(name.substr(0, name.rfind('.')));
    j["modules_to_save"] = std::vector<std::string>(modules.begin(), modules.end());
  } else {
    j["modules_to_save"] = nullptr;
  }
  j["peftlab"] = {{"method", method.to_json()}};
  return j;
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), "cannot read the file");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file.string(), fmt::format("not valid JSON: {}", e.what()));
  }
}

std::string escape_regex(const std::string& text) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(text, special, R"(\$&)");
}

}  // namespace

std::optional<YAML::Node> peft_targets(const nlohmann::json& j, const std::string& file) {
  if (!j.contains("target_modules") || j["target_modules"].is_null()) return std::nullopt;
  const auto& targets = j["target_modules"];
  try {
    YAML::Node node;
    if (targets.is_string()) {
      if (targets != "all-linear")
        throw InputError(file, "target_modules as a regular expression is not supported; list the modules");
      node = "all-linear";
      return node;
    }
    for (const auto& t : targets) {
      std::string name = t.get<std::string>();
      // A short name (no dot) stays one; the model family checks it when the method is planned.
      if (name.find('.') == std::string::npos) {
        node.push_back(name);
      } else {
        // PEFT selects a module whose name equals the entry or ends with "." + entry.
        if (name.rfind("model.", 0) == 0) name = name.substr(6);
        node.push_back("regex:(.*\\.)?" + escape_regex(name));
      }
    }
    return node;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, fmt::format("target_modules: unexpected value: {}", e.what()));
  }
}

YAML::Node low_rank_mapping_from_peft(const nlohmann::json& j, const std::string& file) {
  auto field = [&](const char* key) {
    if (!j.contains(key)) throw InputError(file, fmt::format("missing '{}'", key));
    return j[key];
  };
  try {
    YAML::Node node;
    node["rank"] = field("r").get<int64_t>();
    node["alpha"] = field("lora_alpha").get<double>();
    node["dropout"] = j.value("lora_dropout", 0.0);
    node["rslora"] = j.value("use_rslora", false);
    if (j.contains("init_lora_weights") && j["init_lora_weights"] == "gaussian") node["init_a"] = "gaussian";
    if (auto targets = peft_targets(j, file)) node["targets"] = *targets;
    else throw InputError(file, "missing 'target_modules'");
    std::map<std::string, YAML::Node> overrides;
    for (const char* key : {"rank_pattern", "alpha_pattern"})
      if (j.contains(key) && j[key].is_object())
        for (const auto& [pattern, value] : j[key].items()) {
          auto& o = overrides[pattern];
          o["pattern"] = pattern;  // PEFT's own regex, matched by RankOverride as PEFT does
          if (std::string(key) == "rank_pattern") o["rank"] = value.get<int64_t>();
          else o["alpha"] = value.get<double>();
        }
    for (auto& [pattern, o] : overrides) node["overrides"].push_back(o);
    return node;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, fmt::format("unexpected value: {}", e.what()));
  }
}

std::string peft_module_key(const BackboneConfig& config, const std::string& slot_name) {
  return std::string(kModulePrefix) + config.hf_module_name(slot_name);
}

void export_peft_adapter(BackboneImpl& model, const Method& trained, const fs::path& dir,
                         const PeftExportOptions& options) {
  if (trained.trains_base_weights())
    throw InputError(dir.string(), "full fine-tuning has no adapter to export; export the merged model instead");
  const auto& config = model.config();
  const AdaptationPlan trained_plan = plan_adaptation(config, trained);
  // What the file describes: the trained method, or its equivalent in PEFT's terms (its own plan and fields).
  const auto method = make_method(YAML::Load(trained.peft_equivalent().dump()), dir.string(), "method");
  const AdaptationPlan plan = plan_adaptation(config, *method);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  torch::NoGradGuard no_grad;
  const SharedState shared = shared_state(model, trained_plan);
  const auto shared_tensors = shared ? trained.peft_shared_tensors(shared) : std::vector<PeftTensor>{};
  for (const auto& t : shared_tensors) {
    if (t.output_rows && permutes_rows(config, trained_plan))
      throw InputError(dir.string(),
                       fmt::format("the {} adapter shares '{}' across modules whose rows this model keeps in "
                                   "llama2.c's rotary layout; convert the model to Hugging Face's layout first "
                                   "(peftlab convert) and train on that",
                                   trained.name(), t.suffix));
    tensors.emplace_back("base_model." + t.suffix, t.value.detach().contiguous());
  }
  for (const auto& s : trained_plan.slots) {
    auto slot = model.slot(s.slot);
    if (!slot->has_adapter()) throw std::logic_error(s.slot + ": the model has no adapter the method planned");
    for (const auto& t : trained.peft_tensors(*slot->adapter()))
      tensors.emplace_back(peft_module_key(config, s.slot) + "." + t.suffix,
                           to_layout(config, s.slot, t, t.value.detach(), /*to_hf=*/true).contiguous());
  }
  for (const auto& [name, tensor] : options.modules_to_save)
    tensors.emplace_back(kModulePrefix + name, tensor.detach().contiguous());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(dir.string(), "cannot create the folder: " + ec.message());
  write_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
  std::ofstream out(dir / kConfigFile);
  out << peft_config(config, *method, plan, options).dump(2) << "\n";
  if (!out) throw InputError((dir / kConfigFile).string(), "cannot write the file");
}

std::unique_ptr<Method> read_peft_method(const fs::path& dir) {
  const auto file = (dir / kConfigFile).string();
  auto j = read_json(dir / kConfigFile);
  if (!j.is_object()) throw InputError(file, "expected a JSON object");
  if (j.contains("peftlab") && j["peftlab"].contains("method"))
    return make_method(YAML::Load(j["peftlab"]["method"].dump()), file, "peftlab.method");
  for (const auto& info : method_registry()) {
    if (!info.from_peft_config) continue;
    if (auto mapping = info.from_peft_config(j, file)) return make_method(*mapping, file, "method");
  }
  throw InputError(file, fmt::format("peft_type {} ({}) is not an adapter peftlab can load",
                                     j.contains("peft_type") ? j["peft_type"].dump() : "missing",
                                     j.contains("init_lora_weights") ? "init_lora_weights " + j["init_lora_weights"].dump()
                                                                     : "no init_lora_weights"));
}

PeftAdapter load_peft_adapter(BackboneImpl& model, const fs::path& dir) {
  PeftAdapter adapter;
  adapter.config = read_json(dir / kConfigFile);
  adapter.method = read_peft_method(dir);
  const auto weights_path = dir / kWeightsFile;
  SafetensorsFile weights(weights_path);
  std::set<std::string> unused;
  for (const auto& name : weights.names()) unused.insert(name);

  AdaptationPlan plan = apply_method(model, *adapter.method, uint64_t{0});
  torch::NoGradGuard no_grad;
  auto fill = [&](const std::string& key, const PeftTensor& t, const std::string& slot) {
    if (!weights.contains(key)) throw InputError(weights_path.string(), fmt::format("missing tensor '{}'", key));
    auto value = weights.load(key);
    if (value.sizes() != t.value.sizes())
      throw InputError(weights_path.string(), fmt::format("tensor '{}' has shape {}, expected {}", key,
                                                          fmt::join(value.sizes(), "x"), fmt::join(t.value.sizes(), "x")));
    value = value.to(t.value.options());
    t.value.copy_(slot.empty() ? value : to_layout(model.config(), slot, t, value, /*to_hf=*/false));
    unused.erase(key);
  };
  if (const SharedState shared = shared_state(model, plan))
    for (const auto& t : adapter.method->peft_shared_tensors(shared)) fill("base_model." + t.suffix, t, "");
  for (const auto& s : plan.slots)
    for (const auto& t : adapter.method->peft_tensors(*model.slot(s.slot)->adapter()))
      fill(peft_module_key(model.config(), s.slot) + "." + t.suffix, t, s.slot);
  if (adapter.config.contains("modules_to_save") && adapter.config["modules_to_save"].is_array())
    for (const auto& module : adapter.config["modules_to_save"]) {
      std::string prefix = kModulePrefix + module.get<std::string>() + ".";
      for (auto it = unused.begin(); it != unused.end();) {
        if (it->rfind(prefix, 0) == 0) {
          adapter.modules_to_save[it->substr(std::string(kModulePrefix).size())] = weights.load(*it);
          it = unused.erase(it);
        } else {
          ++it;
        }
      }
    }
  if (!unused.empty())
    throw InputError(weights_path.string(),
                     fmt::format("unexpected tensor '{}' (not an adapter of the configured method)", *unused.begin()));
  return adapter;
}

}  // namespace peftlab
