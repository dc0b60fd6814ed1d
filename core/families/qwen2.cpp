#include "core/families/qwen2.h"

#include <nlohmann/json.hpp>

#include "core/config_fields.h"

namespace peftlab {

Qwen2Config::Qwen2Config() {
  family = "qwen2";
  architecture = "Qwen2ForCausalLM";
  vocab_size = 151936;
  hidden_size = 4096;
  intermediate_size = 22016;
  num_hidden_layers = 32;
  num_attention_heads = 32;
  num_key_value_heads = 32;
  max_position_embeddings = 32768;
  rms_norm_eps = 1e-6;
  rope_theta = 10000.0;
  tie_word_embeddings = false;
  qkv_bias = true;
  bos_token_id = 151643;
  eos_token_id = 151643;
}

nlohmann::json Qwen2Config::to_hf_json() const {
  auto j = DecoderConfig::to_hf_json();
  j["use_sliding_window"] = false;
  return j;
}

std::shared_ptr<BackboneConfig> read_qwen2_config(const nlohmann::json& config, const std::string& source) {
  auto c = std::make_shared<Qwen2Config>();
  read_decoder_fields(config, source, *c);
  // Qwen2 windows only the layers from max_window_layers on; no released checkpoint enables it.
  if (bool_field(config, "use_sliding_window", false, source))
    input_error(source, "field 'use_sliding_window' is true; Qwen2's per-layer sliding window is not supported");
  return c;
}

}  // namespace peftlab
