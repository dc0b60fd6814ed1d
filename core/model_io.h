// Loading and saving backbones: llama2.c checkpoint files and Hugging Face layout folders (config.json with
// model.safetensors or a sharded model.safetensors.index.json, plus tokenizer.model).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/llama.h"
#include "core/tokenizer.h"

namespace peftlab {

// The model's shape from a llama2.c file's header or a folder's config.json, without reading weights.
LlamaConfig read_model_config(const std::filesystem::path& model_path);

// Loads a llama2.c file or a Hugging Face folder (weights converted to float32).
Llama load_model(const std::filesystem::path& model_path);

// The tokenizer that goes with a model: tokenizer.model in its folder, or beside the file; for a llama2.c
// file also tok<vocab>.model beside it (llama2.c's naming). Empty when none is found.
std::filesystem::path default_tokenizer_path(const std::filesystem::path& model_path);

struct LoadedModel {
  Llama model{nullptr};
  std::shared_ptr<Tokenizer> tokenizer;
};

// The model and its tokenizer (`tokenizer_path`, else default_tokenizer_path), checked to belong together.
LoadedModel load_model_and_tokenizer(const std::filesystem::path& model_path,
                                     const std::filesystem::path& tokenizer_path = {});

// Throws InputError naming the tokenizer file when its vocabulary differs from the model's.
void check_tokenizer_matches(const Tokenizer& tokenizer, const LlamaConfig& config);

// Copies `weights` (stable names, see LlamaImpl) into the model: every parameter must be present with its exact
// shape, and all values finite; otherwise InputError(source, ...).
void assign_weights(LlamaImpl& model, const std::map<std::string, torch::Tensor>& weights, const std::string& source);

}  // namespace peftlab
