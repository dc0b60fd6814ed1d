// Hugging Face layout folders of any registered family: config.json (model_type picks the family),
// model.safetensors (or a sharded model.safetensors.index.json), and the tokenizer.
#pragma once

#include <filesystem>

#include "core/backbone.h"

namespace peftlab {

// Loads the folder's weights (F32/F16/BF16, converted to float32) into a new model of the family config.json
// names. The config is checked against its sanity bounds, and every tensor's shape in the safetensors headers
// against the shape the config implies, before the model is allocated.
Backbone load_hf_model(const std::filesystem::path& folder);

// Writes a Hugging Face layout folder: config.json, model.safetensors (rows in Hugging Face's layout, e.g.
// llama2.c's interleaved q/k rows permuted to rotate-half) and, when given, the tokenizer as tokenizer.model.
// Adapters must be merged first (the effective weights are written).
void write_hf_folder(BackboneImpl& model, const std::filesystem::path& folder, const std::filesystem::path& tokenizer = {});

}  // namespace peftlab
