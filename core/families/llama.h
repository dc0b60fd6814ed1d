// The LLaMA family (config.json model_type "llama"; llama2.c files load as llama too): the shared decoder with
// LLaMA's defaults, rope_scaling "linear" and "llama3", attention_bias, mlp_bias and head_dim.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

#include "core/decoder.h"

namespace peftlab {

class LlamaConfig : public DecoderConfig {
 public:
  LlamaConfig();  // transformers' LlamaConfig defaults
  nlohmann::json to_hf_json() const override;
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<LlamaConfig>(*this); }
};

// config.json -> LlamaConfig; the registry's reader for "llama".
std::shared_ptr<BackboneConfig> read_llama_config(const nlohmann::json& config, const std::string& source);

}  // namespace peftlab
