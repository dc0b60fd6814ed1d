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

// Our adapter parameter name -> PEFT's key suffix.
const std::vector<std::pair<std::string, std::string>>& key_suffixes() {
  static const std::vector<std::pair<std::string, std::string>> suffixes = {
      {"lora_A", "lora_A.weight"},
      {"lora_B", "lora_B.weight"},
      {"magnitude", "lora_magnitude_vector"},
      {"magnitude_in", kPeftMagnitudeInSuffix}};
  return suffixes;
}

// Output-row tensors (lora_B, magnitude) between the backbone's row order and Hugging Face's.
torch::Tensor to_layout(const BackboneConfig& config, const std::string& slot, const torch::Tensor& t,
                        const std::string& param, bool to_hf) {
  if (param != "lora_B" && param != "magnitude") return t;
  return config.output_rows_to_hf(slot, t, to_hf);
}

bool all_short_names(const std::vector<std::string>& targets, const std::vector<std::string>& modules) {
  for (const auto& t : targets)
    if (std::find(modules.begin(), modules.end(), t) == modules.end()) return false;
  return true;
}

nlohmann::json peft_config(const BackboneConfig& config, const Method& method, const AdaptationPlan& plan,
                           const PeftExportOptions& options) {
  const auto& o = method.options();
  const auto targets = resolved_targets(config, method);
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = options.task_type;
  j["base_model_name_or_path"] = options.base_model_name_or_path;
  j["r"] = o.rank;
  j["lora_alpha"] = o.alpha;
  j["lora_dropout"] = o.dropout;
  j["use_rslora"] = o.rslora;
  j["use_dora"] = method.name() == "dora";
  j["init_lora_weights"] = o.init_a == InitA::gaussian ? nlohmann::json("gaussian") : nlohmann::json(true);
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  if (targets == std::vector<std::string>{"all-linear"}) {
    j["target_modules"] = "all-linear";
  } else if (all_short_names(targets, config.module_names())) {
    j["target_modules"] = targets;
  } else {
    auto& list = j["target_modules"] = nlohmann::json::array();
    for (const auto& s : plan.slots) list.push_back(config.hf_module_name(s.slot));
  }
  // Per-module values that differ from the defaults, by full module name (exact under PEFT's suffix rule).
  j["rank_pattern"] = nlohmann::json::object();
  j["alpha_pattern"] = nlohmann::json::object();
  for (const auto& s : plan.slots) {
    if (s.rank != o.rank) j["rank_pattern"][config.hf_module_name(s.slot)] = s.rank;
    if (s.alpha != o.alpha) j["alpha_pattern"][config.hf_module_name(s.slot)] = s.alpha;
  }
  if (!options.modules_to_save.empty()) {
    std::set<std::string> modules;
    for (const auto& [name, tensor] : options.modules_to_save) modules.insert(name.substr(0, name.rfind('.')));
    j["modules_to_save"] = std::vector<std::string>(modules.begin(), modules.end());
  } else {
    j["modules_to_save"] = nullptr;
  }
  j["peftlab"] = {{"method", method.to_json()},
                  {"bora_magnitude_in_key", kPeftMagnitudeInSuffix},
                  {"note", "lora_magnitude_vector is DoRA's m / BoRA's m_out (per output row); "
                           "lora_magnitude_vector_in is BoRA's m_in (per input column)"}};
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

// A method mapping from PEFT's own fields (adapters written by PEFT itself: LoRA or DoRA).
YAML::Node method_from_peft_fields(const nlohmann::json& j, const std::string& file) {
  auto field = [&](const char* key) {
    if (!j.contains(key)) throw InputError(file, fmt::format("missing '{}'", key));
    return j[key];
  };
  if (field("peft_type") != "LORA")
    throw InputError(file, fmt::format("peft_type '{}' is not supported (only LORA, with or without use_dora)",
                                       j["peft_type"].dump()));
  try {
    YAML::Node node;
    node["name"] = j.value("use_dora", false) ? "dora" : "lora";
    node["rank"] = field("r").get<int64_t>();
    node["alpha"] = field("lora_alpha").get<double>();
    node["dropout"] = j.value("lora_dropout", 0.0);
    node["rslora"] = j.value("use_rslora", false);
    const auto& targets = field("target_modules");
    if (targets.is_string()) {
      if (targets != "all-linear")
        throw InputError(file, "target_modules as a regular expression is not supported; list the modules");
      node["targets"] = "all-linear";
    } else {
      for (const auto& t : targets) {
        std::string name = t.get<std::string>();
        // A short name (no dot) stays one; the model family checks it when the method is planned.
        if (name.find('.') == std::string::npos) {
          node["targets"].push_back(name);
        } else {
          // PEFT selects a module whose name equals the entry or ends with "." + entry.
          if (name.rfind("model.", 0) == 0) name = name.substr(6);
          node["targets"].push_back("regex:(.*\\.)?" + escape_regex(name));
        }
      }
    }
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

}  // namespace

std::string peft_module_key(const BackboneConfig& config, const std::string& slot_name) {
  return std::string(kModulePrefix) + config.hf_module_name(slot_name);
}

void export_peft_adapter(BackboneImpl& model, const Method& method, const fs::path& dir, const PeftExportOptions& options) {
  if (method.trains_base_weights())
    throw InputError(dir.string(), "full fine-tuning has no adapter to export; export the merged model instead");
  AdaptationPlan plan = plan_adaptation(model.config(), method);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  torch::NoGradGuard no_grad;
  for (const auto& s : plan.slots) {
    auto slot = model.slot(s.slot);
    if (!slot->has_adapter()) throw std::logic_error(s.slot + ": the model has no adapter the method planned");
    auto params = slot->adapter()->named_parameters(/*recurse=*/false);
    for (const auto& [ours, suffix] : key_suffixes())
      if (params.contains(ours))
        tensors.emplace_back(peft_module_key(model.config(), s.slot) + "." + suffix,
                             to_layout(model.config(), s.slot, params[ours].detach(), ours, /*to_hf=*/true).contiguous());
  }
  for (const auto& [name, tensor] : options.modules_to_save)
    tensors.emplace_back(kModulePrefix + name, tensor.detach().contiguous());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(dir.string(), "cannot create the folder: " + ec.message());
  write_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
  std::ofstream out(dir / kConfigFile);
  out << peft_config(model.config(), method, plan, options).dump(2) << "\n";
  if (!out) throw InputError((dir / kConfigFile).string(), "cannot write the file");
}

std::unique_ptr<Method> read_peft_method(const fs::path& dir) {
  const auto file = (dir / kConfigFile).string();
  auto j = read_json(dir / kConfigFile);
  if (!j.is_object()) throw InputError(file, "expected a JSON object");
  if (j.contains("peftlab") && j["peftlab"].contains("method"))
    return make_method(YAML::Load(j["peftlab"]["method"].dump()), file, "peftlab.method");
  return make_method(method_from_peft_fields(j, file), file, "method");
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
  for (const auto& s : plan.slots) {
    auto params = model.slot(s.slot)->adapter()->named_parameters(/*recurse=*/false);
    for (const auto& [ours, suffix] : key_suffixes()) {
      if (!params.contains(ours)) continue;
      auto key = peft_module_key(model.config(), s.slot) + "." + suffix;
      if (!weights.contains(key)) throw InputError(weights_path.string(), fmt::format("missing tensor '{}'", key));
      auto& param = params[ours];
      auto value = weights.load(key);
      if (value.sizes() != param.sizes())
        throw InputError(weights_path.string(), fmt::format("tensor '{}' has shape {}, expected {}", key,
                                                            fmt::join(value.sizes(), "x"), fmt::join(param.sizes(), "x")));
      param.copy_(to_layout(model.config(), s.slot, value.to(param.options()), ours, /*to_hf=*/false));
      unused.erase(key);
    }
  }
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
