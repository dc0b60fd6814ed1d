#include "core/families/roberta.h"

#include <nlohmann/json.hpp>

namespace peftlab {

namespace F = torch::nn::functional;

RobertaConfig::RobertaConfig() {
  family = "roberta";
  architecture = "RobertaForSequenceClassification";
  body_prefix = "roberta";
  vocab_size = 50265;
  hidden_size = 768;
  num_hidden_layers = 12;
  num_attention_heads = 12;
  intermediate_size = 3072;
  position_table_size = 512;
  type_vocab_size = 2;
  layer_norm_eps = 1e-12;
  pad_token_id = 1;
  bos_token_id = 0;
  eos_token_id = 2;
  positions_after_padding = true;
  max_position_embeddings = position_table_size - pad_token_id - 1;
}

SequenceHead RobertaConfig::make_head(int64_t num_outputs) const {
  return std::make_shared<RobertaClassificationHeadImpl>(*this, num_outputs);
}

std::shared_ptr<BackboneConfig> read_roberta_config(const nlohmann::json& config, const std::string& source) {
  auto c = std::make_shared<RobertaConfig>();
  read_encoder_fields(config, source, *c);
  return c;
}

RobertaClassificationHeadImpl::RobertaClassificationHeadImpl(const EncoderConfig& c, int64_t num_outputs)
    : dropout_(c.head_dropout()) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  out_proj = register_module("out_proj", torch::nn::Linear(c.hidden_size, num_outputs));
  init_head_linear(dense, c.initializer_range);
  init_head_linear(out_proj, c.initializer_range);
}

torch::Tensor RobertaClassificationHeadImpl::forward(const torch::Tensor& hidden, const torch::Tensor&) {
  const auto dropout = F::DropoutFuncOptions().p(dropout_).training(is_training());
  auto x = F::dropout(hidden.select(1, 0), dropout);  // the <s> token's hidden state
  x = torch::tanh(dense(x));
  return out_proj(F::dropout(x, dropout));
}

}  // namespace peftlab
