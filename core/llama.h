// A LLaMA-family decoder in LibTorch: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP,
// tied or separate output embedding. Every Linear is an AdaptableLinear slot with a stable name
// ("layers.N.self_attn.q_proj" ... "layers.N.mlp.down_proj") that method plugins attach to.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/adaptable_linear.h"

namespace peftlab {

struct LlamaConfig {
  int64_t dim = 0;
  int64_t hidden_dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t vocab_size = 0;
  int64_t max_seq_len = 0;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool tie_embeddings = true;
  // llama2.c rotates interleaved pairs (x0,x1),(x2,x3)...; Hugging Face rotates halves with q/k rows
  // permuted. Both give the same logits for the matching weight layout.
  bool rope_interleaved = false;

  int64_t head_dim() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_dim() * n_kv_heads; }
  // Throws InputError(source, ...) when the shape is inconsistent (e.g. dim not divisible by n_heads).
  void validate(const std::string& source) const;
  // Parameters of the backbone (embeddings, norms, linears, and the output head when untied).
  int64_t parameter_count() const;
};

// Keys and values of past positions, one pair per layer, for incremental decoding.
struct KVCache {
  std::vector<torch::Tensor> keys, values;  // (B, n_kv_heads, T_past, head_dim)
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

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
  AttentionImpl(const LlamaConfig& config, const std::string& prefix);
  // x: (B, T, dim); positions start at `start_pos`; `cache` (may be null) is extended in place.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        int64_t start_pos, KVCache* cache, size_t layer);
  AdaptableLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  LlamaConfig config_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const LlamaConfig& config, const std::string& prefix);
  torch::Tensor forward(const torch::Tensor& x);
  AdaptableLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const LlamaConfig& config, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        int64_t start_pos, KVCache* cache, size_t layer);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(const LlamaConfig& config);

  // Final hidden states (after the last norm): tokens (B, T) int64 -> (B, T, dim).
  torch::Tensor hidden_states(const torch::Tensor& tokens, int64_t start_pos = 0, KVCache* cache = nullptr);
  // Causal-LM logits: (B, T, vocab).
  torch::Tensor logits(const torch::Tensor& hidden);
  torch::Tensor forward(const torch::Tensor& tokens, int64_t start_pos = 0, KVCache* cache = nullptr) {
    return logits(hidden_states(tokens, start_pos, cache));
  }
  // Hidden state at each row's last non-padding position: hidden (B, T, dim), last_index (B) -> (B, dim).
  static torch::Tensor gather_last(const torch::Tensor& hidden, const torch::Tensor& last_index);

  // Every adaptable slot, in a stable order (layer by layer, q k v o gate up down).
  std::vector<AdaptableLinear> slots() const;
  AdaptableLinear slot(const std::string& name) const;  // throws std::out_of_range
  const LlamaConfig& config() const { return config_; }
  // Activation checkpointing (Hugging Face's gradient_checkpointing_enable): while autograd records, each
  // decoder layer keeps only its input and runs again during backward. One more forward, far less memory.
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }
  // The output projection's weight (the embedding matrix when tied).
  torch::Tensor output_weight() const { return config_.tie_embeddings ? embed_tokens->weight : lm_head->weight; }

  // Stable parameter names (Hugging Face LLaMA names without the "model." prefix): embed_tokens.weight,
  // layers.N.self_attn.q_proj.weight, ..., norm.weight, lm_head.weight (untied only).
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // only when the output embedding is not tied

 private:
  void build_rotary_tables();
  LlamaConfig config_;
  torch::Tensor rope_cos_, rope_sin_;  // (max_seq_len, head_dim/2), buffers
  std::vector<DecoderLayer> layer_list_;
  bool activation_checkpointing_ = false;
};
TORCH_MODULE(Llama);

}  // namespace peftlab
