// The DeBERTa-v2 family (config.json model_type "deberta-v2", also DeBERTa-v3): a post-LN encoder whose
// self-attention adds disentangled relative-position terms to the content scores, as transformers'
// modeling_deberta_v2.py: content-to-position (c2p) and position-to-content (p2c) scores against relative
// embeddings of the distance query - key, distances clamped to the attention span or put in logarithmic
// buckets (position_buckets), the relative embeddings optionally layer-normalised (norm_rel_ebd) and projected
// by the content projections (share_att_key) or their own (pos_key_proj, pos_query_proj); all scores divided
// by sqrt(head_dim * (1 + number of position terms)). The sequence-classification head is
// DebertaV2ForSequenceClassification's: ContextPooler (dense + activation on the first token), classifier.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/encoder.h"

namespace peftlab {

class DebertaV2Config : public EncoderConfig {
 public:
  DebertaV2Config();  // transformers' DebertaV2Config defaults
  bool relative_attention = false;
  int64_t max_relative_positions = -1;  // < 1: max_position_embeddings
  int64_t position_buckets = -1;        // <= 0: no buckets
  bool share_att_key = false;
  bool c2p = false, p2c = false;        // pos_att_type
  bool norm_rel_embeddings = false;     // norm_rel_ebd contains layer_norm
  bool position_biased_input = true;    // absolute position embeddings added to the input
  std::string pooler_hidden_act = "gelu";
  double pooler_dropout = 0.0;

  int64_t max_relative() const { return max_relative_positions < 1 ? position_table_size : max_relative_positions; }
  // Relative embeddings cover distances -span .. span - 1: 2 * span rows.
  int64_t attention_span() const { return position_buckets > 0 ? position_buckets : max_relative(); }
  int64_t scale_factor() const { return 1 + int64_t(c2p) + int64_t(p2c); }

  void validate(const std::string& source) const override;
  std::vector<ParameterShape> parameter_shapes() const override;
  std::vector<SlotShape> slot_shapes() const override;
  std::vector<std::string> module_names() const override { return {"query_proj", "key_proj", "value_proj", "dense"}; }
  std::vector<std::string> default_target_modules() const override { return {"query_proj", "value_proj"}; }
  std::string describe() const override;
  nlohmann::json to_hf_json() const override;
  Backbone build() const override;
  SequenceHead make_head(int64_t num_outputs) const override;
  std::string head_name() const override { return "sequence_head"; }
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<DebertaV2Config>(*this); }
};

// config.json -> DebertaV2Config; the registry's reader for "deberta-v2".
std::shared_ptr<BackboneConfig> read_deberta_v2_config(const nlohmann::json& config, const std::string& source);

// Distances query - key of a sequence of `size` tokens, (size, size) int64, in logarithmic buckets when
// bucket_size > 0 (transformers' build_relative_position and make_log_bucket_position, in float32 as there).
torch::Tensor deberta_relative_positions(int64_t size, int64_t bucket_size, int64_t max_position);

class DebertaEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit DebertaEmbeddingsImpl(const DebertaV2Config& config);
  // LayerNorm(word + positions + token types), zero on padding (mask 0), dropout.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids, const torch::Tensor& mask);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(DebertaEmbeddings);

class DisentangledSelfAttentionImpl : public torch::nn::Module {
 public:
  DisentangledSelfAttentionImpl(const DebertaV2Config& config, const std::string& prefix);
  // x (B, T, hidden); hidden_keys (B, 1, 1, T) and padded_queries (B, 1, T, 1) true on padding, undefined
  // when none; relative_positions (T, T); relative_embeddings (2 span, hidden) or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& hidden_keys, const torch::Tensor& padded_queries,
                        const torch::Tensor& relative_positions, const torch::Tensor& relative_embeddings);
  AdaptableLinear query_proj{nullptr}, key_proj{nullptr}, value_proj{nullptr};
  torch::nn::Linear pos_key_proj{nullptr}, pos_query_proj{nullptr};  // without share_att_key

 private:
  torch::Tensor split_heads(const torch::Tensor& t) const;
  int64_t heads_, head_dim_, span_;
  bool c2p_, p2c_, share_;
  double scale_, dropout_, position_dropout_;
};
TORCH_MODULE(DisentangledSelfAttention);

class DebertaAttentionImpl : public torch::nn::Module {
 public:
  DebertaAttentionImpl(const DebertaV2Config& config, const std::string& prefix);
  DisentangledSelfAttention self{nullptr};
  EncoderOutput output{nullptr};
};
TORCH_MODULE(DebertaAttention);

class DebertaLayerImpl : public torch::nn::Module {
 public:
  DebertaLayerImpl(const DebertaV2Config& config, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& hidden_keys, const torch::Tensor& padded_queries,
                        const torch::Tensor& relative_positions, const torch::Tensor& relative_embeddings);
  DebertaAttention attention{nullptr};
  EncoderIntermediate intermediate{nullptr};
  EncoderOutput output{nullptr};
};
TORCH_MODULE(DebertaLayer);

class DebertaV2Impl : public BackboneImpl {
 public:
  explicit DebertaV2Impl(const DebertaV2Config& config);
  const BackboneConfig& config() const override { return *config_; }
  using BackboneImpl::hidden_states;
  torch::Tensor hidden_states(const BackboneInputs& inputs) override;
  std::vector<AdaptableLinear> slots() const override;
  SequenceHead make_sequence_head(int64_t num_outputs) const override { return config_->make_head(num_outputs); }
  std::string sequence_head_name() const override { return config_->head_name(); }

  DebertaEmbeddings embeddings{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;  // layer.N, rel_embeddings, LayerNorm
  torch::nn::Embedding rel_embeddings{nullptr};
  torch::nn::LayerNorm rel_norm{nullptr};  // encoder.LayerNorm

 private:
  std::shared_ptr<const DebertaV2Config> config_;
  std::vector<DebertaLayer> layer_list_;
};

// DebertaV2ForSequenceClassification's head: pooler.dense.{weight,bias} and classifier.{weight,bias}, keyed as
// they are in Hugging Face's files.
class ContextPoolerClassifierImpl : public SequenceHeadImpl {
 public:
  ContextPoolerClassifierImpl(const DebertaV2Config& config, int64_t num_outputs);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) override;
  std::string hf_key(const std::string& parameter) const override { return parameter; }
  std::shared_ptr<torch::nn::Module> pooler;
  torch::nn::Linear pooler_dense{nullptr}, classifier{nullptr};

 private:
  double pooler_dropout_, classifier_dropout_;
  bool tanh_gelu_;
};

}  // namespace peftlab
