// The pre-norm decoder the decoder families share (LLaMA, Mistral, Qwen2): RMSNorm, rotary embeddings
// (optionally rescaled), grouped-query attention with an optional sliding window, SwiGLU MLP, tied or separate
// output embedding. Families differ only in options (biases, window, rope scaling, defaults), which their
// config readers (core/families/) set. Every Linear is an AdaptableLinear slot with a stable name
// ("layers.N.self_attn.q_proj" ... "layers.N.mlp.down_proj") that method plugins attach to.
//
// Only the decoder families include this header; everything else uses core/backbone.h.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/backbone.h"

namespace peftlab {

// config.json's rope_scaling (transformers' modeling_rope_utils): none, "linear" or "llama3".
struct RopeScaling {
  std::string type;     // "" when absent
  double factor = 1.0;  // linear and llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;          // llama3
};

class DecoderConfig : public BackboneConfig {
 public:
  std::string family = "llama";             // model_type
  std::string architecture;                 // config.json's architectures entry, set by the family
  int64_t intermediate_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;                     // 0: hidden_size / num_attention_heads
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;                    // q_proj, k_proj, v_proj (LLaMA attention_bias, Qwen2 always)
  bool o_bias = false;                      // o_proj (LLaMA attention_bias)
  bool mlp_bias = false;                    // gate/up/down (LLaMA mlp_bias)
  int64_t sliding_window = 0;               // 0: full causal attention
  double initializer_range = 0.02;          // std of the score head's init
  int64_t bos_token_id = 1, eos_token_id = 2;
  // llama2.c rotates interleaved pairs (x0,x1),(x2,x3)...; Hugging Face rotates halves with q/k rows
  // permuted. Both give the same logits for the matching weight layout.
  bool rope_interleaved = false;

  int64_t attention_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  int64_t q_dim() const { return attention_head_dim() * num_attention_heads; }
  int64_t kv_dim() const { return attention_head_dim() * num_key_value_heads; }

  std::string model_type() const override { return family; }
  bool is_decoder() const override { return true; }
  void validate(const std::string& source) const override;
  std::vector<ParameterShape> parameter_shapes() const override;
  std::vector<SlotShape> slot_shapes() const override;
  std::vector<std::string> module_names() const override;
  std::vector<std::string> default_target_modules() const override;
  std::string describe() const override;
  nlohmann::json to_hf_json() const override;
  std::string hf_key(const std::string& parameter) const override;
  std::string hf_module_name(const std::string& slot) const override;
  torch::Tensor output_rows_to_hf(const std::string& slot, const torch::Tensor& rows, bool to_hf) const override;
  Backbone build() const override;
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<DecoderConfig>(*this); }
};

// Reads the fields every decoder family shares from config.json into `config`, whose values on entry are
// the family's defaults (a field absent or null keeps its default). Checks the sanity bounds.
void read_decoder_fields(const nlohmann::json& json, const std::string& source, DecoderConfig& config);

// Rotary inverse frequencies theta^(-2i/d), i < d/2, after the config's rope_scaling (float64).
torch::Tensor rope_inverse_frequencies(const DecoderConfig& config);

// Rows of a q or k weight reordered from llama2.c's interleaved rotary pairs to Hugging Face's rotate-half
// layout (and back with `inverse`), per head.
torch::Tensor permute_rotary_rows(const torch::Tensor& weight, int64_t n_heads, bool inverse = false);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const DecoderConfig& config, const std::string& prefix);
  // x: (B, T, hidden); `mask_bias` (broadcastable to (B, 1, T, S), x's dtype) is 0 where a query may see a key
  // and -inf where not (attention_bias()), undefined when every key is visible; `cache` (may be null) is
  // extended in place.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask_bias, KVCache* cache, size_t layer);
  AdaptableLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
  bool interleaved_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const DecoderConfig& config, const std::string& prefix);
  torch::Tensor forward(const torch::Tensor& x);
  AdaptableLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const DecoderConfig& config, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask_bias, KVCache* cache, size_t layer);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

class DecoderImpl : public BackboneImpl {
 public:
  explicit DecoderImpl(const DecoderConfig& config);

  const BackboneConfig& config() const override { return *config_; }
  const DecoderConfig& decoder_config() const { return *config_; }
  using BackboneImpl::hidden_states;
  torch::Tensor hidden_states(const BackboneInputs& inputs) override;
  torch::Tensor logits(const torch::Tensor& hidden) override;
  torch::Tensor lm_head_weight() override { return output_weight(); }
  std::vector<AdaptableLinear> slots() const override;
  SequenceHead make_sequence_head(int64_t num_outputs) const override;
  std::string sequence_head_name() const override { return "score"; }

  // The output projection's weight (the embedding matrix when tied).
  torch::Tensor output_weight() const { return config_->tie_word_embeddings ? embed_tokens->weight : lm_head->weight; }
  // Which keys each query sees, (B or 1, 1, T, S), or undefined when all of them: causal, the sliding window,
  // padding keys hidden (a query always sees itself, so no row is empty).
  torch::Tensor attention_allowed(const BackboneInputs& inputs, int64_t past) const;
  // The same as the additive mask attention uses: 0 where allowed, -inf where not, in `dtype`. Adding it leaves
  // visible scores exactly as they are, and its backward passes the gradient through untouched (a masked
  // fill's backward is one more pass over every score).
  static torch::Tensor attention_bias(const torch::Tensor& allowed, torch::ScalarType dtype);

  // Parameter names are Hugging Face's without the "model." prefix: embed_tokens.weight,
  // layers.N.self_attn.q_proj.weight, ..., norm.weight, lm_head.weight (untied only).
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // only when the output embedding is not tied

 private:
  std::shared_ptr<const DecoderConfig> config_;  // the family's own config type (a clone)
  torch::Tensor inv_freq_;  // (head_dim/2) float64, not a buffer: recomputed from the config
  std::vector<DecoderLayer> layer_list_;
};

// The decoders' sequence-classification head (transformers' *ForSequenceClassification): score, a Linear
// without bias, on the hidden state of each row's last non-padding token.
class LastTokenScoreImpl : public SequenceHeadImpl {
 public:
  LastTokenScoreImpl(int64_t hidden_size, int64_t num_outputs, double init_std);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) override;
  std::string hf_key(const std::string& parameter) const override { return "score." + parameter; }
  torch::Tensor weight;  // (num_outputs, hidden)
};

}  // namespace peftlab
