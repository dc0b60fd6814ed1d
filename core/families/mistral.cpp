#include "core/families/mistral.h"

#include <nlohmann/json.hpp>

#include "core/config_fields.h"

namespace peftlab {

MistralConfig::MistralConfig() {
  family = "mistral";
  architecture = "MistralForCausalLM";
  vocab_size = 32000;
  hidden_size = 4096;
  intermediate_size = 14336;
  num_hidden_layers = 32;
  num_attention_heads = 32;
  num_key_value_heads = 8;
  max_position_embeddings = 4096 * 32;
  rms_norm_eps = 1e-6;
  rope_theta = 10000.0;
  tie_word_embeddings = false;
  sliding_window = 4096;
}

nlohmann::json MistralConfig::to_hf_json() const {
  auto j = DecoderConfig::to_hf_json();
  j["sliding_window"] = sliding_window > 0 ? nlohmann::json(sliding_window) : nlohmann::json(nullptr);
  return j;
}

std::shared_ptr<BackboneConfig> read_mistral_config(const nlohmann::json& config, const std::string& source) {
  auto c = std::make_shared<MistralConfig>();
  read_decoder_fields(config, source, *c);
  // Absent: the default window; null: none (Mistral-7B-v0.2 and later attend to the whole context).
  if (config.contains("sliding_window"))
    c->sliding_window = config["sliding_window"].is_null() ? 0 : size_field(config, "sliding_window", 0, kMaxDimension, source);
  return c;
}

}  // namespace peftlab
