#include "core/backbone.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/errors.h"
#include "core/families/bert.h"
#include "core/families/deberta_v2.h"
#include "core/families/llama.h"
#include "core/families/mistral.h"
#include "core/families/qwen2.h"
#include "core/families/roberta.h"
#include "core/suggest.h"

namespace peftlab {

const std::vector<BackboneFamily>& backbone_families() {
  // One line per family: config.json's model_type and the family's config reader.
  static const std::vector<BackboneFamily> families = {
      {"llama", read_llama_config},
      {"mistral", read_mistral_config},
      {"qwen2", read_qwen2_config},
      {"bert", read_bert_config},
      {"roberta", read_roberta_config},
      {"deberta-v2", read_deberta_v2_config},
  };
  return families;
}

const BackboneFamily& backbone_family(const std::string& model_type, const std::string& source) {
  std::vector<std::string> known;
  for (const auto& family : backbone_families()) {
    if (family.model_type == model_type) return family;
    known.push_back(family.model_type);
  }
  throw InputError(source, "model_type: " + unknown_name_message("model family", model_type, known));
}

BackboneConfigPtr backbone_config_from_json(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw InputError(source, "expected a JSON object");
  std::string model_type = "llama";
  if (config.contains("model_type")) {
    if (!config["model_type"].is_string())
      throw InputError(source, fmt::format("field 'model_type' must be a string, got {}", config["model_type"].dump()));
    model_type = config["model_type"].get<std::string>();
  }
  auto parsed = backbone_family(model_type, source).read_config(config, source);
  parsed->validate(source);
  return parsed;
}

BackboneConfigPtr read_backbone_config(const std::filesystem::path& config_json) {
  const std::string source = config_json.string();
  if (!std::filesystem::exists(config_json)) throw InputError(source, "no such file");
  std::ifstream in(config_json);
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(source, fmt::format("invalid JSON: {}", e.what()));
  }
  return backbone_config_from_json(config, source);
}

int64_t BackboneConfig::parameter_count() const {
  int64_t total = 0;
  for (const auto& p : parameter_shapes()) {
    int64_t n = 1;
    for (auto d : p.shape) n *= d;
    total += n;
  }
  return total;
}

torch::Tensor BackboneConfig::output_rows_to_hf(const std::string&, const torch::Tensor& rows, bool) const { return rows; }

torch::Tensor BackboneImpl::hidden_states(const torch::Tensor& input_ids, int64_t start_pos, KVCache* cache) {
  BackboneInputs inputs;
  inputs.input_ids = input_ids;
  inputs.start_pos = start_pos;
  inputs.cache = cache;
  return hidden_states(inputs);
}

torch::Tensor BackboneImpl::logits(const torch::Tensor&) {
  throw std::logic_error(config().model_type() + " is not a causal language model: it has no LM logits");
}

AdaptableLinear BackboneImpl::slot(const std::string& name) const {
  for (const auto& s : slots())
    if (s->slot_name() == name) return s;
  throw std::out_of_range("no adaptable slot named " + name);
}

}  // namespace peftlab
