// Hugging Face layout folders for LLaMA models: config.json, model.safetensors (or a sharded
// model.safetensors.index.json), tokenizer.model.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/llama.h"

namespace peftlab {

// Parses config.json; a missing required field, a wrong type or an inconsistent shape is an InputError naming it.
LlamaConfig read_hf_config(const std::filesystem::path& config_json);
nlohmann::json hf_config_json(const LlamaConfig& config);

// Loads the folder's weights (F32/F16/BF16, converted to float32) into a new model.
Llama load_hf_model(const std::filesystem::path& folder);

// Writes a Hugging Face layout folder: config.json, model.safetensors (rotate-half rotary layout: q/k rows are
// permuted when the model uses llama2.c's interleaved layout) and, when given, the tokenizer as tokenizer.model.
// Adapters must be merged first (the effective weights are written).
void write_hf_folder(LlamaImpl& model, const std::filesystem::path& folder, const std::filesystem::path& tokenizer = {});

}  // namespace peftlab
