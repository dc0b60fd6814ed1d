// Loading backbones of any registered family: llama2.c checkpoint files (the llama family) and Hugging Face
// layout folders (config.json with model.safetensors or a sharded model.safetensors.index.json, plus the
// tokenizer).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/backbone.h"
#include "core/tokenizer.h"

namespace peftlab {

// The model's config from a llama2.c file's header, a folder's config.json (a folder holding only config.json
// is enough), or a config.json path; no weights are read.
BackboneConfigPtr read_model_config(const std::filesystem::path& model_path);

// Loads a llama2.c file or a Hugging Face folder (weights converted to float32).
Backbone load_model(const std::filesystem::path& model_path);

// The tokenizer that goes with a model: tokenizer.model in its folder, or beside the file; for a llama2.c
// file also tok<vocab>.model beside it (llama2.c's naming). Empty when none is found.
std::filesystem::path default_tokenizer_path(const std::filesystem::path& model_path);

struct LoadedModel {
  Backbone model;
  std::shared_ptr<Tokenizer> tokenizer;
};

// The model and its tokenizer (`tokenizer_path`, else default_tokenizer_path), checked to belong together.
LoadedModel load_model_and_tokenizer(const std::filesystem::path& model_path,
                                     const std::filesystem::path& tokenizer_path = {});

// Throws InputError naming the tokenizer file when it has more pieces than the model's vocabulary (fewer is
// fine: Qwen2.5's embedding has 151936 rows for 151665 tokens).
void check_tokenizer_matches(const Tokenizer& tokenizer, const BackboneConfig& config);

// Copies `weights` (stable names, as named_parameters() reports them) into the model: every parameter must be
// present with its exact shape, and all values finite; otherwise InputError(source, ...).
void assign_weights(BackboneImpl& model, const std::map<std::string, torch::Tensor>& weights, const std::string& source);

}  // namespace peftlab
