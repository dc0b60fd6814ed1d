// The Qwen2 family (config.json model_type "qwen2", also Qwen2.5): the shared decoder with Qwen2's defaults,
// biases on q/k/v (not on o_proj), tied embeddings when tie_word_embeddings. use_sliding_window true is refused.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

#include "core/decoder.h"

namespace peftlab {

class Qwen2Config : public DecoderConfig {
 public:
  Qwen2Config();  // transformers' Qwen2Config defaults
  nlohmann::json to_hf_json() const override;
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<Qwen2Config>(*this); }
};

std::shared_ptr<BackboneConfig> read_qwen2_config(const nlohmann::json& config, const std::string& source);

}  // namespace peftlab
