#include "core/families/llama.h"

#include <nlohmann/json.hpp>

#include "core/config_fields.h"

namespace peftlab {

LlamaConfig::LlamaConfig() {
  family = "llama";
  architecture = "LlamaForCausalLM";
  vocab_size = 32000;
  hidden_size = 4096;
  intermediate_size = 11008;
  num_hidden_layers = 32;
  num_attention_heads = 32;
  num_key_value_heads = 0;  // transformers' None: as many as num_attention_heads
  max_position_embeddings = 2048;
  rms_norm_eps = 1e-6;
  rope_theta = 10000.0;
  tie_word_embeddings = false;
}

nlohmann::json LlamaConfig::to_hf_json() const {
  auto j = DecoderConfig::to_hf_json();
  j["attention_bias"] = qkv_bias;
  j["mlp_bias"] = mlp_bias;
  return j;
}

std::shared_ptr<BackboneConfig> read_llama_config(const nlohmann::json& config, const std::string& source) {
  auto c = std::make_shared<LlamaConfig>();
  read_decoder_fields(config, source, *c);
  // attention_bias puts a bias on all four attention projections, mlp_bias on the three MLP ones.
  c->qkv_bias = c->o_bias = bool_field(config, "attention_bias", false, source);
  c->mlp_bias = bool_field(config, "mlp_bias", false, source);
  return c;
}

}  // namespace peftlab
