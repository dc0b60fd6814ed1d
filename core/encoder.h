// The post-LayerNorm Transformer encoder the encoder families share (BERT, RoBERTa): word, learned absolute
// position and token type embeddings summed and layer-normalised, then blocks of self-attention and a GELU
// feed-forward layer, each followed by dropout, the residual sum and LayerNorm. Families differ in their
// defaults, how positions are counted (RoBERTa's start after padding_idx) and their sequence-classification
// head; their config classes (core/families/) say which.
//
// Parameter names are Hugging Face's without the body prefix ("bert." / "roberta."):
// embeddings.word_embeddings.weight, encoder.layer.N.attention.self.query.weight, ... Every Linear of a block is
// an AdaptableLinear slot named by its module path: encoder.layer.N.attention.self.{query,key,value},
// encoder.layer.N.attention.output.dense, encoder.layer.N.intermediate.dense, encoder.layer.N.output.dense.
//
// Only the encoder families include this header; everything else uses core/backbone.h.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/backbone.h"

namespace peftlab {

class EncoderConfig : public BackboneConfig {
 public:
  std::string family;        // model_type
  std::string architecture;  // config.json's architectures entry (the *ForSequenceClassification class)
  std::string body_prefix;   // the body's module name in that class: "bert", "roberta"
  int64_t intermediate_size = 3072;
  int64_t num_attention_heads = 12;
  int64_t type_vocab_size = 2;
  // Rows of position_embeddings (config.json's max_position_embeddings). BackboneConfig's
  // max_position_embeddings is the longest sequence: fewer when positions start after padding_idx.
  int64_t position_table_size = 512;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";         // "gelu" (exact, erf) or "gelu_new" / "gelu_pytorch_tanh" (tanh)
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double classifier_dropout = -1;          // negative: config.json's null, hidden_dropout_prob is used
  double initializer_range = 0.02;
  int64_t pad_token_id = 0;
  int64_t bos_token_id = -1, eos_token_id = -1;  // written back to config.json only (-1: none)
  // RoBERTa: a real token's position is padding_idx + its count among the row's non-padding tokens; a
  // padding token's is padding_idx. BERT: positions 0, 1, 2, ...
  bool positions_after_padding = false;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  double head_dropout() const { return classifier_dropout >= 0 ? classifier_dropout : hidden_dropout_prob; }

  std::string model_type() const override { return family; }
  bool is_decoder() const override { return false; }
  void validate(const std::string& source) const override;
  std::vector<ParameterShape> parameter_shapes() const override;
  std::vector<SlotShape> slot_shapes() const override;
  // query, key, value, dense: PEFT matches "dense" against all three dense layers of a block (use a
  // regex: target for one of them).
  std::vector<std::string> module_names() const override;
  std::vector<std::string> default_target_modules() const override { return {"query", "value"}; }
  std::string describe() const override;
  nlohmann::json to_hf_json() const override;
  std::string hf_key(const std::string& parameter) const override { return body_prefix + "." + parameter; }
  std::string hf_module_name(const std::string& slot) const override { return body_prefix + "." + slot; }
  Backbone build() const override;

  // The family's sequence-classification head with `num_outputs` outputs, freshly initialised.
  virtual SequenceHead make_head(int64_t num_outputs) const = 0;
  virtual std::string head_name() const = 0;  // the head's module name in the task model
  // Head tensors a pretrained checkpoint carries that the family's Python class loads into its head (BERT's
  // pooler), by Hugging Face key.
  virtual std::vector<std::string> checkpoint_head_keys() const { return {}; }
};

// Reads the fields every encoder family shares from config.json into `config`, whose values on entry are the
// family's defaults (a field absent or null keeps its default). Checks the sanity bounds.
void read_encoder_fields(const nlohmann::json& json, const std::string& source, EncoderConfig& config);

// The encoder's modules, named as Hugging Face's so that named_parameters() gives its names.
class EncoderEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EncoderEmbeddingsImpl(const EncoderConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& position_ids);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(EncoderEmbeddings);

class EncoderSelfAttentionImpl : public torch::nn::Module {
 public:
  EncoderSelfAttentionImpl(const EncoderConfig& config, const std::string& prefix);
  // x (B, T, hidden); `hidden_keys` (B, 1, 1, T) true on padding keys, undefined when none.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& hidden_keys);
  AdaptableLinear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  int64_t heads_, head_dim_;
  double dropout_;
};
TORCH_MODULE(EncoderSelfAttention);

// dense, dropout, LayerNorm(dense output + residual): BertSelfOutput and BertOutput.
class EncoderOutputImpl : public torch::nn::Module {
 public:
  EncoderOutputImpl(const EncoderConfig& config, const std::string& slot, int64_t in_features);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  AdaptableLinear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(EncoderOutput);

class EncoderAttentionImpl : public torch::nn::Module {
 public:
  EncoderAttentionImpl(const EncoderConfig& config, const std::string& prefix);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& hidden_keys);
  EncoderSelfAttention self{nullptr};
  EncoderOutput output{nullptr};
};
TORCH_MODULE(EncoderAttention);

class EncoderIntermediateImpl : public torch::nn::Module {
 public:
  EncoderIntermediateImpl(const EncoderConfig& config, const std::string& prefix);
  torch::Tensor forward(const torch::Tensor& x);
  AdaptableLinear dense{nullptr};

 private:
  bool tanh_gelu_;
};
TORCH_MODULE(EncoderIntermediate);

class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(const EncoderConfig& config, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& hidden_keys);
  EncoderAttention attention{nullptr};
  EncoderIntermediate intermediate{nullptr};
  EncoderOutput output{nullptr};
};
TORCH_MODULE(EncoderLayer);

class EncoderImpl : public BackboneImpl {
 public:
  explicit EncoderImpl(const EncoderConfig& config);

  const BackboneConfig& config() const override { return *config_; }
  const EncoderConfig& encoder_config() const { return *config_; }
  using BackboneImpl::hidden_states;
  // The last block's output (B, T, hidden). Refuses a KV cache or start_pos (encoders see the whole sequence).
  torch::Tensor hidden_states(const BackboneInputs& inputs) override;
  std::vector<AdaptableLinear> slots() const override;
  // A new head; parameters the checkpoint held (set_checkpoint_head_tensors) start from its values.
  SequenceHead make_sequence_head(int64_t num_outputs) const override;
  std::string sequence_head_name() const override { return config_->head_name(); }

  // Head tensors read from the model's checkpoint (checkpoint_head_keys), by Hugging Face key.
  void set_checkpoint_head_tensors(std::map<std::string, torch::Tensor> tensors) { checkpoint_head_ = std::move(tensors); }

  // Position ids (B, T) as the family counts them.
  torch::Tensor position_ids(const torch::Tensor& input_ids) const;

  EncoderEmbeddings embeddings{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;  // holds the blocks as encoder.layer.N, as Hugging Face names them

 private:
  std::shared_ptr<const EncoderConfig> config_;
  std::vector<EncoderLayer> layer_list_;
  std::map<std::string, torch::Tensor> checkpoint_head_;
};

// Initialises a head Linear as transformers' _init_weights does: weight normal(0, std), bias zero.
void init_head_linear(torch::nn::Linear& linear, double std);

}  // namespace peftlab
