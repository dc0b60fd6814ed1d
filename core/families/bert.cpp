#include "core/families/bert.h"

#include <nlohmann/json.hpp>

namespace peftlab {

namespace F = torch::nn::functional;

BertConfig::BertConfig() {
  family = "bert";
  architecture = "BertForSequenceClassification";
  body_prefix = "bert";
  vocab_size = 30522;
  hidden_size = 768;
  num_hidden_layers = 12;
  num_attention_heads = 12;
  intermediate_size = 3072;
  position_table_size = 512;
  max_position_embeddings = 512;
  type_vocab_size = 2;
  layer_norm_eps = 1e-12;
  pad_token_id = 0;
}

SequenceHead BertConfig::make_head(int64_t num_outputs) const {
  return std::make_shared<BertPoolerClassifierImpl>(*this, num_outputs);
}

std::shared_ptr<BackboneConfig> read_bert_config(const nlohmann::json& config, const std::string& source) {
  auto c = std::make_shared<BertConfig>();
  read_encoder_fields(config, source, *c);
  return c;
}

BertPoolerClassifierImpl::BertPoolerClassifierImpl(const EncoderConfig& c, int64_t num_outputs)
    : dropout_(c.head_dropout()) {
  pooler = register_module("pooler", std::make_shared<torch::nn::Module>());
  pooler_dense = pooler->register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  classifier = register_module("classifier", torch::nn::Linear(c.hidden_size, num_outputs));
  init_head_linear(pooler_dense, c.initializer_range);
  init_head_linear(classifier, c.initializer_range);
}

torch::Tensor BertPoolerClassifierImpl::forward(const torch::Tensor& hidden, const torch::Tensor&) {
  auto pooled = torch::tanh(pooler_dense(hidden.select(1, 0)));  // the [CLS] token's hidden state
  return classifier(F::dropout(pooled, F::DropoutFuncOptions().p(dropout_).training(is_training())));
}

std::string BertPoolerClassifierImpl::hf_key(const std::string& parameter) const {
  // The pooler belongs to BertModel ("bert.pooler"), the classifier to the task class.
  return parameter.rfind("pooler.", 0) == 0 ? "bert." + parameter : parameter;
}

}  // namespace peftlab
