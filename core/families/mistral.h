// The Mistral family (config.json model_type "mistral"): the shared decoder with Mistral's defaults and its
// sliding-window attention (a query at i sees keys j with i - sliding_window < j <= i; null: full causal).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

#include "core/decoder.h"

namespace peftlab {

class MistralConfig : public DecoderConfig {
 public:
  MistralConfig();  // transformers' MistralConfig defaults
  nlohmann::json to_hf_json() const override;
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<MistralConfig>(*this); }
};

std::shared_ptr<BackboneConfig> read_mistral_config(const nlohmann::json& config, const std::string& source);

}  // namespace peftlab
