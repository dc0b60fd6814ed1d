// Adapters in the Hugging Face PEFT layout: adapter_config.json + adapter_model.safetensors.
//
// Keys (PEFT's, for a decoder's causal LM / sequence classifier wrapped in a PeftModel; the module path after
// "base_model.model." is the family's, BackboneConfig::hf_module_name): each slot's tensors under
// "base_model.model.<module>." + the suffixes the method names (Method::peft_tensors, e.g. lora_A.weight),
// tensors shared by all slots under "base_model." + suffix (Method::peft_shared_tensors), and
// base_model.model.score.weight for modules_to_save (the task head), as PEFT saves it.
// adapter_config.json carries the method's PEFT fields (Method::peft_config_fields), the targets, and a
// "peftlab" block with the method's exact options, so variants PEFT cannot express load back exactly.
// Output-row tensors pass through BackboneConfig::output_rows_to_hf: models in llama2.c's interleaved rotary
// layout have their q/k rows permuted to Hugging Face's layout on export and back on import.
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/backbone.h"
#include "methods/method.h"

namespace peftlab {

// The safetensors key prefix of a slot ("base_model.model.model.layers.0.self_attn.q_proj" for the decoders).
std::string peft_module_key(const BackboneConfig& config, const std::string& slot_name);

// For the methods' readers of adapter_config.json: the `targets` of PEFT's target_modules (nullopt when
// absent), and the low-rank options (rank, alpha, dropout, rslora, targets, overrides from rank_pattern and
// alpha_pattern) of a LoRA-type config. InputError naming `file` on unexpected values.
std::optional<YAML::Node> peft_targets(const nlohmann::json& config, const std::string& file);
YAML::Node low_rank_mapping_from_peft(const nlohmann::json& config, const std::string& file);

struct PeftExportOptions {
  std::string task_type = "CAUSAL_LM";  // or "SEQ_CLS"
  std::string base_model_name_or_path;
  // Trained modules saved whole (PEFT's modules_to_save), by parameter name: {"score.weight", head weight}.
  std::map<std::string, torch::Tensor> modules_to_save;
};

// Writes `dir`/adapter_config.json and `dir`/adapter_model.safetensors from `model`'s attached adapters.
// InputError when the method has no adapter (full fine-tuning: export the merged model instead).
void export_peft_adapter(BackboneImpl& model, const Method& method, const std::filesystem::path& dir,
                         const PeftExportOptions& options = {});

struct PeftAdapter {
  std::unique_ptr<Method> method;
  std::map<std::string, torch::Tensor> modules_to_save;  // "score.weight" -> tensor
  nlohmann::json config;
};

// The method an adapter_config.json describes: the "peftlab" block when present, else PEFT's own fields as the
// registered methods read them (MethodInfo::from_peft_config).
std::unique_ptr<Method> read_peft_method(const std::filesystem::path& dir);

// Attaches the adapter in `dir` to `model` (which has none yet) and loads its weights. Every expected key must
// be present with its shape, and no unknown key may be left: otherwise an InputError naming the file.
PeftAdapter load_peft_adapter(BackboneImpl& model, const std::filesystem::path& dir);

}  // namespace peftlab
