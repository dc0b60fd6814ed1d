#include "core/llama.h"

#include <fmt/format.h>

#include <cmath>

#include "core/activation_checkpoint.h"
#include "core/errors.h"

namespace peftlab {

namespace F = torch::nn::functional;

void LlamaConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t value, const char* name) {
    if (value <= 0) throw InputError(source, fmt::format("{} must be positive, got {}", name, value));
  };
  positive(dim, "dim");
  positive(hidden_dim, "hidden_dim");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(vocab_size, "vocab_size");
  positive(max_seq_len, "max_seq_len");
  if (dim % n_heads != 0) throw InputError(source, fmt::format("dim {} is not divisible by n_heads {}", dim, n_heads));
  if (head_dim() % 2 != 0) throw InputError(source, fmt::format("head dimension {} is odd; rotary needs pairs", head_dim()));
  if (n_heads % n_kv_heads != 0)
    throw InputError(source, fmt::format("n_heads {} is not a multiple of n_kv_heads {}", n_heads, n_kv_heads));
  if (!(norm_eps > 0) || !(rope_theta > 0)) throw InputError(source, "norm_eps and rope_theta must be positive");
}

int64_t LlamaConfig::parameter_count() const {
  int64_t attention = dim * dim * 2 + dim * kv_dim() * 2;
  int64_t mlp = 3 * dim * hidden_dim;
  int64_t per_layer = attention + mlp + 2 * dim;
  int64_t embeddings = vocab_size * dim * (tie_embeddings ? 1 : 2);
  return embeddings + n_layers * per_layer + dim;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Normalise in at least float32 whatever the activation dtype, as Hugging Face does.
  auto x32 = x.to(torch::promote_types(x.scalar_type(), torch::kFloat32));
  auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return normed.to(x.scalar_type()) * weight;
}

namespace {

// x: (B, H, T, D); cos/sin: (T, D/2).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, bool interleaved) {
  const int64_t half = x.size(-1) / 2;
  if (interleaved) {
    auto pairs = x.unflatten(-1, {half, 2});
    auto x0 = pairs.select(-1, 0), x1 = pairs.select(-1, 1);
    return torch::stack({x0 * cos - x1 * sin, x0 * sin + x1 * cos}, -1).flatten(-2);
  }
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

}  // namespace

AttentionImpl::AttentionImpl(const LlamaConfig& config, const std::string& prefix) : config_(config) {
  q_proj = register_module("q_proj", AdaptableLinear(prefix + "q_proj", config.dim, config.dim));
  k_proj = register_module("k_proj", AdaptableLinear(prefix + "k_proj", config.dim, config.kv_dim()));
  v_proj = register_module("v_proj", AdaptableLinear(prefix + "v_proj", config.dim, config.kv_dim()));
  o_proj = register_module("o_proj", AdaptableLinear(prefix + "o_proj", config.dim, config.dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     int64_t start_pos, KVCache* cache, size_t layer) {
  const int64_t B = x.size(0), T = x.size(1), D = config_.head_dim();
  auto q = q_proj(x).view({B, T, config_.n_heads, D}).transpose(1, 2);
  auto k = k_proj(x).view({B, T, config_.n_kv_heads, D}).transpose(1, 2);
  auto v = v_proj(x).view({B, T, config_.n_kv_heads, D}).transpose(1, 2);
  q = apply_rotary(q, cos, sin, config_.rope_interleaved);
  k = apply_rotary(k, cos, sin, config_.rope_interleaved);
  if (cache != nullptr) {
    if (cache->keys.size() <= layer) cache->keys.resize(layer + 1), cache->values.resize(layer + 1);
    if (cache->keys[layer].defined()) {
      k = torch::cat({cache->keys[layer], k}, 2);
      v = torch::cat({cache->values[layer], v}, 2);
    }
    cache->keys[layer] = k;
    cache->values[layer] = v;
  }
  const int64_t group = config_.n_heads / config_.n_kv_heads;
  if (group > 1) {
    k = k.repeat_interleave(group, 1);
    v = v.repeat_interleave(group, 1);
  }
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(D));
  const int64_t S = k.size(2);  // total positions attended to
  if (T > 1) {
    // Query t (absolute position start_pos + t) sees keys 0..start_pos + t. Right padding needs no extra mask:
    // under a causal mask, padding after the last real token never reaches it.
    auto query_pos = torch::arange(start_pos, start_pos + T, torch::TensorOptions().device(x.device())).unsqueeze(1);
    auto key_pos = torch::arange(S, torch::TensorOptions().device(x.device())).unsqueeze(0);
    scores = scores.masked_fill(key_pos > query_pos, -std::numeric_limits<float>::infinity());
  }
  auto probs = torch::softmax(scores.to(torch::kFloat32), -1).to(q.scalar_type());
  auto out = torch::matmul(probs, v).transpose(1, 2).reshape({B, T, config_.dim});
  return o_proj(out);
}

MlpImpl::MlpImpl(const LlamaConfig& config, const std::string& prefix) {
  gate_proj = register_module("gate_proj", AdaptableLinear(prefix + "gate_proj", config.dim, config.hidden_dim));
  up_proj = register_module("up_proj", AdaptableLinear(prefix + "up_proj", config.dim, config.hidden_dim));
  down_proj = register_module("down_proj", AdaptableLinear(prefix + "down_proj", config.hidden_dim, config.dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return down_proj(F::silu(gate_proj(x)) * up_proj(x)); }

DecoderLayerImpl::DecoderLayerImpl(const LlamaConfig& config, int64_t index) {
  const std::string prefix = fmt::format("layers.{}.", index);
  input_layernorm = register_module("input_layernorm", RMSNorm(config.dim, config.norm_eps));
  self_attn = register_module("self_attn", Attention(config, prefix + "self_attn."));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(config.dim, config.norm_eps));
  mlp = register_module("mlp", Mlp(config, prefix + "mlp."));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        int64_t start_pos, KVCache* cache, size_t layer) {
  auto h = x + self_attn(input_layernorm(x), cos, sin, start_pos, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

LlamaImpl::LlamaImpl(const LlamaConfig& config) : config_(config) {
  config_.validate("model config");
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.dim));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.n_layers; ++i) {
    layer_list_.push_back(DecoderLayer(config, i));
    layers->push_back(layer_list_.back());
  }
  norm = register_module("norm", RMSNorm(config.dim, config.norm_eps));
  if (!config.tie_embeddings) {
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(config.dim, config.vocab_size).bias(false)));
  }
  build_rotary_tables();
}

void LlamaImpl::build_rotary_tables() {
  const int64_t half = config_.head_dim() / 2;
  auto exponent = torch::arange(0, half, torch::kFloat64) * 2.0 / static_cast<double>(config_.head_dim());
  auto inv_freq = 1.0 / torch::pow(config_.rope_theta, exponent);
  auto positions = torch::arange(config_.max_seq_len, torch::kFloat64);
  auto angles = torch::outer(positions, inv_freq);
  rope_cos_ = register_buffer("rope_cos", angles.cos().to(torch::kFloat32));
  rope_sin_ = register_buffer("rope_sin", angles.sin().to(torch::kFloat32));
}

torch::Tensor LlamaImpl::hidden_states(const torch::Tensor& tokens, int64_t start_pos, KVCache* cache) {
  const int64_t T = tokens.size(1);
  if (start_pos + T > config_.max_seq_len)
    throw std::invalid_argument(fmt::format("sequence of {} positions exceeds the model's context of {}",
                                            start_pos + T, config_.max_seq_len));
  auto x = embed_tokens(tokens);
  auto cos = rope_cos_.narrow(0, start_pos, T).to(x.scalar_type());
  auto sin = rope_sin_.narrow(0, start_pos, T).to(x.scalar_type());
  const bool checkpoint = activation_checkpointing_ && cache == nullptr && torch::GradMode::is_enabled();
  for (size_t i = 0; i < layer_list_.size(); ++i) {
    DecoderLayer layer = layer_list_[i];
    if (!checkpoint) {
      x = layer->forward(x, cos, sin, start_pos, cache, i);
      continue;
    }
    std::vector<torch::Tensor> trainable;
    for (const auto& p : layer->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    // Captured by value: the block runs again during backward, after this function has returned.
    x = checkpointed([layer, cos, sin, start_pos, i](const torch::Tensor& in) mutable {
      return layer->forward(in, cos, sin, start_pos, nullptr, i);
    }, x, trainable);
  }
  return norm(x);
}

torch::Tensor LlamaImpl::logits(const torch::Tensor& hidden) { return F::linear(hidden, output_weight()); }

torch::Tensor LlamaImpl::gather_last(const torch::Tensor& hidden, const torch::Tensor& last_index) {
  auto index = last_index.to(torch::kLong).view({-1, 1, 1}).expand({hidden.size(0), 1, hidden.size(2)});
  return hidden.gather(1, index).squeeze(1);
}

std::vector<AdaptableLinear> LlamaImpl::slots() const {
  std::vector<AdaptableLinear> out;
  for (const auto& layer : layer_list_) {
    const auto& a = layer->self_attn;
    const auto& m = layer->mlp;
    for (const auto& s : {a->q_proj, a->k_proj, a->v_proj, a->o_proj, m->gate_proj, m->up_proj, m->down_proj})
      out.push_back(s);
  }
  return out;
}

AdaptableLinear LlamaImpl::slot(const std::string& name) const {
  for (const auto& s : slots())
    if (s->slot_name() == name) return s;
  throw std::out_of_range("no adaptable slot named " + name);
}

}  // namespace peftlab
