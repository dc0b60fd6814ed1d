#include "core/decoder.h"

#include <torch/version.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>

#include "core/activation_checkpoint.h"
#include "core/config_fields.h"
#include "core/errors.h"

// at::scaled_dot_product_attention exists from PyTorch 2.0 on.
#define PEFTLAB_HAS_SDPA (TORCH_VERSION_MAJOR >= 2)

namespace peftlab {

namespace F = torch::nn::functional;
using nlohmann::json;

// ---- DecoderConfig ----

void DecoderConfig::validate(const std::string& source) const {
  check_common_sizes(*this, intermediate_size, num_attention_heads, max_position_embeddings, source);
  check_size(num_key_value_heads, "num_key_value_heads", kMaxDimension, source);
  if (head_dim < 0 || head_dim > kMaxDimension) input_error(source, "field 'head_dim' is {}, out of range", head_dim);
  if (head_dim == 0 && hidden_size % num_attention_heads != 0)
    input_error(source, "hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads);
  if (attention_head_dim() % 2 != 0)
    input_error(source, "head dimension {} is odd; rotary embeddings need pairs", attention_head_dim());
  if (num_attention_heads % num_key_value_heads != 0)
    input_error(source, "num_attention_heads {} is not a multiple of num_key_value_heads {}", num_attention_heads,
                num_key_value_heads);
  if (q_dim() > kMaxDimension) input_error(source, "num_attention_heads x head_dim = {} is beyond the sanity bound", q_dim());
  if (!(rms_norm_eps > 0)) input_error(source, "field 'rms_norm_eps' must be positive, got {}", rms_norm_eps);
  if (!(rope_theta > 0) || !std::isfinite(rope_theta))
    input_error(source, "field 'rope_theta' must be positive, got {}", rope_theta);
  if (sliding_window < 0) input_error(source, "field 'sliding_window' must be positive, got {}", sliding_window);
  const auto& s = rope_scaling;
  if (!s.type.empty()) {
    if (!(s.factor > 0) || !std::isfinite(s.factor))
      input_error(source, "rope_scaling.factor must be positive, got {}", s.factor);
    if (s.type == "llama3") {
      if (!(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor))
        input_error(source, "rope_scaling needs 0 < low_freq_factor < high_freq_factor (got {} and {})", s.low_freq_factor,
                    s.high_freq_factor);
      if (s.original_max_position_embeddings <= 0 || s.original_max_position_embeddings > kMaxDimension)
        input_error(source, "rope_scaling.original_max_position_embeddings must be positive, got {}",
                    s.original_max_position_embeddings);
    }
  }
  // Every factor is bounded above, so the sum fits comfortably in int64.
  if (parameter_count() > kMaxParameters)
    input_error(source, "the config implies {} parameters, beyond the sanity bound {}", parameter_count(), kMaxParameters);
}

std::vector<ParameterShape> DecoderConfig::parameter_shapes() const {
  std::vector<ParameterShape> out;
  out.push_back({"embed_tokens.weight", {vocab_size, hidden_size}});
  const auto slots = slot_shapes();
  const size_t per_layer = module_names().size();
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer) {
    const std::string prefix = fmt::format("layers.{}.", layer);
    for (size_t m = 0; m < per_layer; ++m) {
      if (m == 0) out.push_back({prefix + "input_layernorm.weight", {hidden_size}});
      if (m == 4) out.push_back({prefix + "post_attention_layernorm.weight", {hidden_size}});
      const auto& s = slots[layer * per_layer + m];
      out.push_back({s.name + ".weight", {s.out_features, s.in_features}});
      if (s.has_bias) out.push_back({s.name + ".bias", {s.out_features}});
    }
  }
  out.push_back({"norm.weight", {hidden_size}});
  if (!tie_word_embeddings) out.push_back({"lm_head.weight", {vocab_size, hidden_size}});
  return out;
}

std::vector<std::string> DecoderConfig::module_names() const {
  return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
}

std::vector<std::string> DecoderConfig::default_target_modules() const { return {"q_proj", "v_proj"}; }

std::vector<SlotShape> DecoderConfig::slot_shapes() const {
  struct Module {
    int64_t in, out;
    bool bias;
  };
  const std::vector<Module> modules = {{hidden_size, q_dim(), qkv_bias},           {hidden_size, kv_dim(), qkv_bias},
                                       {hidden_size, kv_dim(), qkv_bias},          {q_dim(), hidden_size, o_bias},
                                       {hidden_size, intermediate_size, mlp_bias}, {hidden_size, intermediate_size, mlp_bias},
                                       {intermediate_size, hidden_size, mlp_bias}};
  const auto names = module_names();
  std::vector<SlotShape> slots;
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer)
    for (size_t m = 0; m < modules.size(); ++m)
      slots.push_back({fmt::format("layers.{}.{}.{}", layer, m < 4 ? "self_attn" : "mlp", names[m]), names[m],
                       modules[m].in, modules[m].out, modules[m].bias});
  return slots;
}

std::string DecoderConfig::describe() const {
  std::string text = fmt::format("{}: dim {}, hidden {}, {} layers, {} heads ({} kv, head_dim {}), vocab {}, {} output",
                                 family, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                                 num_key_value_heads, attention_head_dim(), vocab_size,
                                 tie_word_embeddings ? "tied" : "untied");
  if (qkv_bias) text += ", q/k/v bias";
  if (o_bias) text += ", o bias";
  if (mlp_bias) text += ", mlp bias";
  if (sliding_window > 0) text += fmt::format(", sliding window {}", sliding_window);
  if (!rope_scaling.type.empty()) text += fmt::format(", rope scaling {} x{:g}", rope_scaling.type, rope_scaling.factor);
  return text;
}

json DecoderConfig::to_hf_json() const {
  json j{{"architectures", {architecture}},
         {"model_type", family},
         {"hidden_act", "silu"},
         {"hidden_size", hidden_size},
         {"intermediate_size", intermediate_size},
         {"num_hidden_layers", num_hidden_layers},
         {"num_attention_heads", num_attention_heads},
         {"num_key_value_heads", num_key_value_heads},
         {"vocab_size", vocab_size},
         {"max_position_embeddings", max_position_embeddings},
         {"rms_norm_eps", rms_norm_eps},
         {"rope_theta", rope_theta},
         {"tie_word_embeddings", tie_word_embeddings},
         {"initializer_range", initializer_range},
         {"bos_token_id", bos_token_id},
         {"eos_token_id", eos_token_id},
         {"torch_dtype", "float32"}};
  if (head_dim > 0) j["head_dim"] = head_dim;
  if (rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else {
    j["rope_scaling"] = {{"rope_type", rope_scaling.type}, {"factor", rope_scaling.factor}};
    if (rope_scaling.type == "llama3") {
      j["rope_scaling"]["low_freq_factor"] = rope_scaling.low_freq_factor;
      j["rope_scaling"]["high_freq_factor"] = rope_scaling.high_freq_factor;
      j["rope_scaling"]["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
  }
  return j;
}

std::string DecoderConfig::hf_key(const std::string& parameter) const {
  // Hugging Face's *ForCausalLM holds the body as "model." and the LM head beside it.
  return parameter.rfind("lm_head", 0) == 0 ? parameter : "model." + parameter;
}

std::string DecoderConfig::hf_module_name(const std::string& slot) const { return "model." + slot; }

torch::Tensor DecoderConfig::output_rows_to_hf(const std::string& slot, const torch::Tensor& rows, bool to_hf) const {
  if (!rope_interleaved) return rows;
  auto ends_with = [&](const char* suffix) {
    const std::string s(suffix);
    return slot.size() >= s.size() && slot.compare(slot.size() - s.size(), s.size(), s) == 0;
  };
  int64_t heads = ends_with("self_attn.q_proj") ? num_attention_heads : ends_with("self_attn.k_proj") ? num_key_value_heads : 0;
  if (heads == 0) return rows;
  if (rows.dim() == 1) return permute_rotary_rows(rows.unsqueeze(1), heads, !to_hf).squeeze(1);
  return permute_rotary_rows(rows, heads, !to_hf);
}

Backbone DecoderConfig::build() const { return std::make_shared<DecoderImpl>(*this); }

namespace {

void read_rope_scaling(const json& config, const std::string& source, RopeScaling& scaling) {
  if (!has_field(config, "rope_scaling")) return;
  const json& s = config.at("rope_scaling");
  if (!s.is_object()) input_error(source, "field 'rope_scaling' must be an object, got {}", s.dump());
  // transformers reads "rope_type", and the older "type" when it is absent.
  std::string type = string_field(s, "rope_type", string_field(s, "type", "default", source), source);
  if (type == "default") return;
  const std::string where = source;
  if (type != "linear" && type != "llama3")
    input_error(source, "rope_scaling type '{}' is not supported (linear, llama3)", type);
  if (!has_field(s, "factor")) input_error(source, "rope_scaling of type '{}' needs 'factor'", type);
  scaling.type = type;
  scaling.factor = number_field(s, "factor", 1.0, where);
  if (type == "llama3") {
    for (const char* key : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!has_field(s, key)) input_error(source, "rope_scaling of type 'llama3' needs '{}'", key);
    scaling.low_freq_factor = number_field(s, "low_freq_factor", 1.0, where);
    scaling.high_freq_factor = number_field(s, "high_freq_factor", 4.0, where);
    scaling.original_max_position_embeddings =
        size_field(s, "original_max_position_embeddings", 0, kMaxDimension, where);
  }
}

int64_t token_id_field(const json& config, const char* key, int64_t fallback) {
  // Some configs list several ids (e.g. two end-of-sequence tokens); the first stands for them here.
  if (!config.contains(key)) return fallback;
  const json& v = config.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_array() && !v.empty() && v.front().is_number_integer()) return v.front().get<int64_t>();
  return fallback;
}

}  // namespace

void read_decoder_fields(const json& config, const std::string& source, DecoderConfig& c) {
  const std::string act = string_field(config, "hidden_act", "silu", source);
  if (act != "silu") input_error(source, "hidden_act '{}' is not supported (silu)", act);
  c.hidden_size = size_field(config, "hidden_size", c.hidden_size, kMaxDimension, source);
  c.intermediate_size = size_field(config, "intermediate_size", c.intermediate_size, kMaxDimension, source);
  c.num_hidden_layers = size_field(config, "num_hidden_layers", c.num_hidden_layers, kMaxLayers, source);
  c.num_attention_heads = size_field(config, "num_attention_heads", c.num_attention_heads, kMaxDimension, source);
  // A family default of 0 means "as many as num_attention_heads" (LLaMA's None); Mistral and Qwen2 fix theirs.
  const int64_t kv_default = c.num_key_value_heads > 0 ? c.num_key_value_heads : c.num_attention_heads;
  c.num_key_value_heads = size_field(config, "num_key_value_heads", kv_default, kMaxDimension, source);
  c.head_dim = size_field(config, "head_dim", 0, kMaxDimension, source);
  c.vocab_size = size_field(config, "vocab_size", c.vocab_size, kMaxDimension, source);
  c.max_position_embeddings = size_field(config, "max_position_embeddings", c.max_position_embeddings, kMaxDimension, source);
  c.rms_norm_eps = number_field(config, "rms_norm_eps", c.rms_norm_eps, source);
  c.rope_theta = number_field(config, "rope_theta", c.rope_theta, source);
  c.tie_word_embeddings = bool_field(config, "tie_word_embeddings", c.tie_word_embeddings, source);
  c.initializer_range = number_field(config, "initializer_range", c.initializer_range, source);
  c.bos_token_id = token_id_field(config, "bos_token_id", c.bos_token_id);
  c.eos_token_id = token_id_field(config, "eos_token_id", c.eos_token_id);
  read_rope_scaling(config, source, c.rope_scaling);
  c.rope_interleaved = false;
}

torch::Tensor rope_inverse_frequencies(const DecoderConfig& c) {
  const int64_t dim = c.attention_head_dim();
  auto exponent = torch::arange(0, dim / 2, torch::kFloat64) * 2.0 / static_cast<double>(dim);
  auto inv_freq = 1.0 / torch::pow(c.rope_theta, exponent);
  const auto& s = c.rope_scaling;
  if (s.type == "linear") return inv_freq / s.factor;
  if (s.type != "llama3") return inv_freq;
  // Llama 3.1's frequency-dependent scaling: long wavelengths (beyond the original context / low_freq_factor)
  // are divided by the factor, short ones (below context / high_freq_factor) kept, and the band between
  // interpolated linearly in context / wavelength.
  const double context = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelength = context / s.low_freq_factor, high_wavelength = context / s.high_freq_factor;
  auto wavelength = 2.0 * M_PI / inv_freq;
  auto scaled = torch::where(wavelength > low_wavelength, inv_freq / s.factor, inv_freq);
  auto smooth = (context / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto blended = (1.0 - smooth) * scaled / s.factor + smooth * scaled;
  auto medium = (wavelength >= high_wavelength).logical_and(wavelength <= low_wavelength);
  return torch::where(medium, blended, scaled);
}

torch::Tensor permute_rotary_rows(const torch::Tensor& weight, int64_t n_heads, bool inverse) {
  const int64_t rows = weight.size(0), cols = weight.size(1), half = rows / n_heads / 2;
  if (!inverse) return weight.reshape({n_heads, half, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
  return weight.reshape({n_heads, 2, half, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

// ---- Modules ----

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

// x: (B, H, T, D); cos/sin: (T, D/2) or (B, 1, T, D/2).
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

AttentionImpl::AttentionImpl(const DecoderConfig& c, const std::string& prefix)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.attention_head_dim()),
      interleaved_(c.rope_interleaved) {
  q_proj = register_module("q_proj", AdaptableLinear(prefix + "q_proj", c.hidden_size, c.q_dim(), c.qkv_bias));
  k_proj = register_module("k_proj", AdaptableLinear(prefix + "k_proj", c.hidden_size, c.kv_dim(), c.qkv_bias));
  v_proj = register_module("v_proj", AdaptableLinear(prefix + "v_proj", c.hidden_size, c.kv_dim(), c.qkv_bias));
  o_proj = register_module("o_proj", AdaptableLinear(prefix + "o_proj", c.q_dim(), c.hidden_size, c.o_bias));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& mask_bias, KVCache* cache, size_t layer) {
  const int64_t B = x.size(0), T = x.size(1), D = head_dim_;
  auto q = q_proj(x).view({B, T, heads_, D}).transpose(1, 2);
  auto k = k_proj(x).view({B, T, kv_heads_, D}).transpose(1, 2);
  auto v = v_proj(x).view({B, T, kv_heads_, D}).transpose(1, 2);
  q = apply_rotary(q, cos, sin, interleaved_);
  k = apply_rotary(k, cos, sin, interleaved_);
  if (cache != nullptr) {
    if (cache->keys.size() <= layer) cache->keys.resize(layer + 1), cache->values.resize(layer + 1);
    if (cache->keys[layer].defined()) {
      k = torch::cat({cache->keys[layer], k}, 2);
      v = torch::cat({cache->values[layer], v}, 2);
    }
    cache->keys[layer] = k;
    cache->values[layer] = v;
  }
  const int64_t group = heads_ / kv_heads_;
  if (group > 1) {
    k = k.repeat_interleave(group, 1);
    v = v.repeat_interleave(group, 1);
  }
  torch::Tensor out;
#if PEFTLAB_HAS_SDPA
  // On a GPU, PyTorch's fused attention (flash / memory-efficient kernels); the CPU keeps the explicit
  // products below, whose numbers the parity tests pin.
  if (q.is_cuda()) {
    out = at::scaled_dot_product_attention(q, k, v, mask_bias.defined() ? c10::optional<at::Tensor>(mask_bias) : c10::nullopt);
    return o_proj(out.transpose(1, 2).reshape({B, T, heads_ * D}));
  }
#endif
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(D));
  if (mask_bias.defined()) scores = scores + mask_bias;
  // Softmax in at least float32 (as the reference implementation for half precision); float64 stays float64.
  auto probs = torch::softmax(scores.to(torch::promote_types(scores.scalar_type(), torch::kFloat32)), -1)
                   .to(q.scalar_type());
  out = torch::matmul(probs, v).transpose(1, 2).reshape({B, T, heads_ * D});
  return o_proj(out);
}

MlpImpl::MlpImpl(const DecoderConfig& c, const std::string& prefix) {
  gate_proj = register_module("gate_proj", AdaptableLinear(prefix + "gate_proj", c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", AdaptableLinear(prefix + "up_proj", c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", AdaptableLinear(prefix + "down_proj", c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return down_proj(F::silu(gate_proj(x)) * up_proj(x)); }

DecoderLayerImpl::DecoderLayerImpl(const DecoderConfig& c, int64_t index) {
  const std::string prefix = fmt::format("layers.{}.", index);
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", Attention(c, prefix + "self_attn."));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", Mlp(c, prefix + "mlp."));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const torch::Tensor& mask_bias, KVCache* cache, size_t layer) {
  auto h = x + self_attn(input_layernorm(x), cos, sin, mask_bias, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

// ---- DecoderImpl ----

DecoderImpl::DecoderImpl(const DecoderConfig& config)
    : config_(std::static_pointer_cast<const DecoderConfig>(config.clone())) {
  config_->validate("model config");
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(config_->vocab_size, config_->hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_->num_hidden_layers; ++i) {
    layer_list_.push_back(DecoderLayer(*config_, i));
    layers->push_back(layer_list_.back());
  }
  norm = register_module("norm", RMSNorm(config_->hidden_size, config_->rms_norm_eps));
  if (!config_->tie_word_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(config_->hidden_size, config_->vocab_size).bias(false)));
  inv_freq_ = rope_inverse_frequencies(*config_);
}

torch::Tensor DecoderImpl::attention_allowed(const BackboneInputs& in, int64_t past) const {
  const int64_t T = in.input_ids.size(1), S = past + T;
  const int64_t window = config_->sliding_window;
  const bool causal = T > 1, windowed = window > 0 && S > window;
  torch::Tensor keep;  // (B, S) padding mask
  if (in.attention_mask.defined()) {
    if (in.attention_mask.dim() != 2 || in.attention_mask.size(1) != S)
      throw std::invalid_argument(fmt::format("attention_mask covers {} positions; the forward pass sees {}",
                                              in.attention_mask.size(-1), S));
    if ((in.attention_mask == 0).any().item<bool>()) keep = in.attention_mask != 0;
  }
  if (!causal && !windowed && !keep.defined()) return {};
  const auto options = torch::TensorOptions().device(in.input_ids.device());
  // Absolute positions: query t is at start_pos + t, key s at s (the cache holds every earlier position).
  auto query_pos = torch::arange(in.start_pos, in.start_pos + T, options.dtype(torch::kLong)).unsqueeze(1);
  auto key_pos = torch::arange(S, options.dtype(torch::kLong)).unsqueeze(0);
  auto allowed = key_pos <= query_pos;  // (T, S)
  // transformers' sliding window: query i sees keys j with i - window < j <= i.
  if (windowed) allowed = allowed.logical_and(key_pos > query_pos - window);
  if (!keep.defined()) return allowed.view({1, 1, T, S});
  auto with_padding = allowed.unsqueeze(0).logical_and(keep.unsqueeze(1));  // (B, T, S)
  with_padding = with_padding.logical_or((key_pos == query_pos).unsqueeze(0));
  return with_padding.unsqueeze(1);
}

torch::Tensor DecoderImpl::attention_bias(const torch::Tensor& allowed, torch::ScalarType dtype) {
  if (!allowed.defined()) return {};
  return torch::zeros(allowed.sizes(), allowed.options().dtype(dtype))
      .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

torch::Tensor DecoderImpl::hidden_states(const BackboneInputs& in) {
  const auto& tokens = in.input_ids;
  const int64_t B = tokens.size(0), T = tokens.size(1), start_pos = in.start_pos;
  const bool per_row = in.position_ids.defined();
  if (per_row && (in.position_ids.dim() != 2 || in.position_ids.size(0) != B || in.position_ids.size(1) != T))
    throw std::invalid_argument(fmt::format("position_ids must be ({}, {}), got ({})", B, T, fmt::join(in.position_ids.sizes(), ", ")));
  const int64_t last_position = per_row ? in.position_ids.max().item<int64_t>() : start_pos + T - 1;
  if (last_position + 1 > config_->max_position_embeddings)
    throw std::invalid_argument(fmt::format("sequence of {} positions exceeds the model's context of {}", last_position + 1,
                                            config_->max_position_embeddings));
  if (in.token_type_ids.defined() && (in.token_type_ids != 0).any().item<bool>())
    throw std::invalid_argument(config_->family + " has no token type embeddings; token_type_ids must be zero");
  KVCache* cache = in.cache;
  const int64_t past = cache != nullptr ? cache->length() : 0;
  auto x = embed_tokens(tokens);
  // Rotary angles for these positions in float64, rounded once to float32 as the reference code's tables are
  // (a float64 model keeps them in float64).
  // (T, D/2), or (B, 1, T, D/2) with per-row positions; either broadcasts over (B, heads, T, D/2).
  auto angles = per_row ? (in.position_ids.to(torch::kCPU, torch::kFloat64).unsqueeze(-1) * inv_freq_).unsqueeze(1)
                        : torch::outer(torch::arange(start_pos, start_pos + T, torch::kFloat64), inv_freq_);
  const auto table_type = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto cos = angles.cos().to(table_type).to(x.device(), x.scalar_type());
  auto sin = angles.sin().to(table_type).to(x.device(), x.scalar_type());
  auto mask_bias = attention_bias(attention_allowed(in, past), x.scalar_type());
  const bool checkpoint = activation_checkpointing() && cache == nullptr && torch::GradMode::is_enabled();
  for (size_t i = 0; i < layer_list_.size(); ++i) {
    DecoderLayer layer = layer_list_[i];
    if (!checkpoint) {
      x = layer->forward(x, cos, sin, mask_bias, cache, i);
      continue;
    }
    std::vector<torch::Tensor> trainable;
    for (const auto& p : layer->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    // Captured by value: the block runs again during backward, after this function has returned.
    x = checkpointed([layer, cos, sin, mask_bias, i](const torch::Tensor& input) mutable {
      return layer->forward(input, cos, sin, mask_bias, nullptr, i);
    }, x, trainable);
  }
  return norm(x);
}

torch::Tensor DecoderImpl::logits(const torch::Tensor& hidden) { return F::linear(hidden, output_weight()); }

std::vector<AdaptableLinear> DecoderImpl::slots() const {
  std::vector<AdaptableLinear> out;
  for (const auto& layer : layer_list_) {
    const auto& a = layer->self_attn;
    const auto& m = layer->mlp;
    for (const auto& s : {a->q_proj, a->k_proj, a->v_proj, a->o_proj, m->gate_proj, m->up_proj, m->down_proj})
      out.push_back(s);
  }
  return out;
}

SequenceHead DecoderImpl::make_sequence_head(int64_t num_outputs) const {
  return std::make_shared<LastTokenScoreImpl>(config_->hidden_size, num_outputs, config_->initializer_range);
}

LastTokenScoreImpl::LastTokenScoreImpl(int64_t hidden_size, int64_t num_outputs, double init_std) {
  weight = register_parameter("weight", torch::empty({num_outputs, hidden_size}));
  // transformers initialises the score head with normal(0, initializer_range).
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(weight, 0.0, init_std);
}

torch::Tensor LastTokenScoreImpl::forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  torch::Tensor last;
  if (!attention_mask.defined()) {
    last = torch::full({B}, T - 1, torch::TensorOptions().dtype(torch::kLong).device(hidden.device()));
  } else {
    // The highest position holding a real token (right or left padding alike).
    auto positions = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(hidden.device()));
    last = (positions.unsqueeze(0) * (attention_mask != 0).to(torch::kLong)).amax(1);
  }
  auto index = last.view({-1, 1, 1}).expand({B, 1, hidden.size(2)});
  return F::linear(hidden.gather(1, index).squeeze(1), weight);
}

}  // namespace peftlab
