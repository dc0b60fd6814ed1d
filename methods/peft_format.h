// Adapters in the Hugging Face PEFT layout: adapter_config.json + adapter_model.safetensors.
//
// Keys (PEFT's, for a decoder's causal LM / sequence classifier wrapped in a PeftModel; the module path after
// "base_model.model." is the family's, BackboneConfig::hf_module_name):
//   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight        (r, in)
//   base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight        (out, r)
//   base_model.model.model.layers.N.self_attn.q_proj.lora_magnitude_vector     (out)  DoRA m, BoRA m_out
//   base_model.model.model.layers.N.self_attn.q_proj.lora_magnitude_vector_in  (in)   BoRA m_in (peftlab's key)
//   base_model.model.score.weight       modules_to_save (the task head), as PEFT saves it
// adapter_config.json carries PEFT's fields (peft_type "LORA", r, lora_alpha, use_dora, ...) and a "peftlab"
// block with the method's exact options, so BoRA and variants PEFT cannot express load back exactly.
// Output-row tensors (lora_B, row magnitudes) pass through BackboneConfig::output_rows_to_hf: models in
// llama2.c's interleaved rotary layout have their q/k rows permuted to Hugging Face's layout on export and
// back on import.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "core/backbone.h"
#include "methods/method.h"

namespace peftlab {

// The safetensors key prefix of a slot ("base_model.model.model.layers.0.self_attn.q_proj" for the decoders).
std::string peft_module_key(const BackboneConfig& config, const std::string& slot_name);
constexpr const char* kPeftMagnitudeInSuffix = "lora_magnitude_vector_in";

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

// The method an adapter_config.json describes: the "peftlab" block when present, else PEFT's LoRA fields.
std::unique_ptr<Method> read_peft_method(const std::filesystem::path& dir);

// Attaches the adapter in `dir` to `model` (which has none yet) and loads its weights. Every expected key must
// be present with its shape, and no unknown key may be left: otherwise an InputError naming the file.
PeftAdapter load_peft_adapter(BackboneImpl& model, const std::filesystem::path& dir);

}  // namespace peftlab
