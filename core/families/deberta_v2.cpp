#include "core/families/deberta_v2.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "core/activation_checkpoint.h"
#include "core/config_fields.h"
#include "core/errors.h"

namespace peftlab {

namespace F = torch::nn::functional;
using nlohmann::json;

namespace {

bool is_gelu(const std::string& act) { return act == "gelu" || act == "gelu_new" || act == "gelu_pytorch_tanh"; }

torch::nn::LayerNorm layer_norm(const EncoderConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

// transformers' _init_weights: normal(0, initializer_range), zero bias and padding row.
void init_normal(torch::Tensor weight, double std, int64_t padding_row = -1) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(weight, 0.0, std);
  if (padding_row >= 0) weight[padding_row].zero_();
}

void init_linear(AdaptableLinear& linear, double std) {
  init_normal(linear->weight, std);
  torch::NoGradGuard no_grad;
  linear->bias.zero_();
}

std::vector<std::string> split_bar_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('|', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    for (char& ch : item) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

int64_t integer_field(const json& config, const char* key, int64_t fallback, const std::string& source) {
  if (!has_field(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_number_integer()) input_error(source, "field '{}' must be an integer, got {}", key, v.dump());
  return v.get<int64_t>();
}

}  // namespace

// ---- DebertaV2Config ----

DebertaV2Config::DebertaV2Config() {
  family = "deberta-v2";
  architecture = "DebertaV2ForSequenceClassification";
  body_prefix = "deberta";
  vocab_size = 128100;
  hidden_size = 1536;
  num_hidden_layers = 24;
  num_attention_heads = 24;
  intermediate_size = 6144;
  position_table_size = 512;
  max_position_embeddings = 512;
  type_vocab_size = 0;
  layer_norm_eps = 1e-7;
  pad_token_id = 0;
}

void DebertaV2Config::validate(const std::string& source) const {
  check_common_sizes(*this, intermediate_size, num_attention_heads, position_table_size, source);
  if (type_vocab_size < 0 || type_vocab_size > kMaxDimension)
    input_error(source, "field 'type_vocab_size' is {}, out of range", type_vocab_size);
  if (hidden_size % num_attention_heads != 0)
    input_error(source, "hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads);
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    input_error(source, "field 'pad_token_id' is {}, outside the vocabulary of {}", pad_token_id, vocab_size);
  if (relative_attention && (attention_span() <= 0 || attention_span() > kMaxDimension))
    input_error(source, "the relative attention span {} is out of range", attention_span());
  if (relative_attention && position_buckets > 0 && max_relative() <= position_buckets / 2 + 1)
    input_error(source, "max_relative_positions {} must exceed position_buckets / 2 + 1", max_relative());
  if (!(layer_norm_eps > 0)) input_error(source, "field 'layer_norm_eps' must be positive, got {}", layer_norm_eps);
  if (!is_gelu(hidden_act)) input_error(source, "hidden_act '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh)", hidden_act);
  if (!is_gelu(pooler_hidden_act))
    input_error(source, "pooler_hidden_act '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh)", pooler_hidden_act);
  auto probability = [&](double p, const char* name) {
    if (!(p >= 0 && p < 1)) input_error(source, "field '{}' must be in [0, 1), got {}", name, p);
  };
  probability(hidden_dropout_prob, "hidden_dropout_prob");
  probability(attention_probs_dropout_prob, "attention_probs_dropout_prob");
  probability(pooler_dropout, "pooler_dropout");
  if (classifier_dropout >= 0) probability(classifier_dropout, "cls_dropout");
  if (parameter_count() > kMaxParameters)
    input_error(source, "the config implies {} parameters, beyond the sanity bound {}", parameter_count(), kMaxParameters);
}

std::vector<SlotShape> DebertaV2Config::slot_shapes() const {
  std::vector<SlotShape> slots;
  const int64_t H = hidden_size, I = intermediate_size;
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer) {
    const std::string prefix = fmt::format("encoder.layer.{}.", layer);
    slots.push_back({prefix + "attention.self.query_proj", "query_proj", H, H, true});
    slots.push_back({prefix + "attention.self.key_proj", "key_proj", H, H, true});
    slots.push_back({prefix + "attention.self.value_proj", "value_proj", H, H, true});
    slots.push_back({prefix + "attention.output.dense", "dense", H, H, true});
    slots.push_back({prefix + "intermediate.dense", "dense", H, I, true});
    slots.push_back({prefix + "output.dense", "dense", I, H, true});
  }
  return slots;
}

std::vector<ParameterShape> DebertaV2Config::parameter_shapes() const {
  const int64_t H = hidden_size, I = intermediate_size;
  std::vector<ParameterShape> out = {{"embeddings.word_embeddings.weight", {vocab_size, H}}};
  if (position_biased_input) out.push_back({"embeddings.position_embeddings.weight", {position_table_size, H}});
  if (type_vocab_size > 0) out.push_back({"embeddings.token_type_embeddings.weight", {type_vocab_size, H}});
  out.push_back({"embeddings.LayerNorm.weight", {H}});
  out.push_back({"embeddings.LayerNorm.bias", {H}});
  auto linear = [&](const std::string& name, int64_t in, int64_t outputs) {
    out.push_back({name + ".weight", {outputs, in}});
    out.push_back({name + ".bias", {outputs}});
  };
  auto norm = [&](const std::string& name) {
    out.push_back({name + ".weight", {H}});
    out.push_back({name + ".bias", {H}});
  };
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer) {
    const std::string prefix = fmt::format("encoder.layer.{}.", layer);
    for (const char* name : {"query_proj", "key_proj", "value_proj"}) linear(prefix + "attention.self." + name, H, H);
    if (relative_attention && !share_att_key) {
      if (c2p) linear(prefix + "attention.self.pos_key_proj", H, H);
      if (p2c) linear(prefix + "attention.self.pos_query_proj", H, H);
    }
    linear(prefix + "attention.output.dense", H, H);
    norm(prefix + "attention.output.LayerNorm");
    linear(prefix + "intermediate.dense", H, I);
    linear(prefix + "output.dense", I, H);
    norm(prefix + "output.LayerNorm");
  }
  if (relative_attention) out.push_back({"encoder.rel_embeddings.weight", {2 * attention_span(), H}});
  if (norm_rel_embeddings) norm("encoder.LayerNorm");
  return out;
}

std::string DebertaV2Config::describe() const {
  std::string text = fmt::format("{}: post-LN encoder, dim {}, hidden {}, {} layers, {} heads (head_dim {}), vocab {}, "
                                 "{} positions, {} token type(s), {}",
                                 family, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                                 head_dim(), vocab_size, max_position_embeddings, type_vocab_size, hidden_act);
  if (relative_attention) {
    text += fmt::format(", relative attention ({}{}{}, span {}", c2p ? "c2p" : "", c2p && p2c ? "|" : "", p2c ? "p2c" : "",
                        attention_span());
    if (position_buckets > 0) text += fmt::format(", {} log buckets", position_buckets);
    if (share_att_key) text += ", shared keys";
    text += ")";
  }
  if (!position_biased_input) text += ", no absolute positions";
  return text;
}

json DebertaV2Config::to_hf_json() const {
  json j = EncoderConfig::to_hf_json();
  j.erase("classifier_dropout");
  j.erase("position_embedding_type");
  if (classifier_dropout >= 0) j["cls_dropout"] = classifier_dropout;
  j["relative_attention"] = relative_attention;
  j["max_relative_positions"] = max_relative_positions;
  j["position_buckets"] = position_buckets;
  j["share_att_key"] = share_att_key;
  std::vector<std::string> types;
  if (p2c) types.push_back("p2c");
  if (c2p) types.push_back("c2p");
  j["pos_att_type"] = types;
  j["norm_rel_ebd"] = norm_rel_embeddings ? "layer_norm" : "none";
  j["position_biased_input"] = position_biased_input;
  j["pooler_hidden_act"] = pooler_hidden_act;
  j["pooler_dropout"] = pooler_dropout;
  j["pooler_hidden_size"] = hidden_size;
  return j;
}

Backbone DebertaV2Config::build() const { return std::make_shared<DebertaV2Impl>(*this); }

SequenceHead DebertaV2Config::make_head(int64_t num_outputs) const {
  return std::make_shared<ContextPoolerClassifierImpl>(*this, num_outputs);
}

std::shared_ptr<BackboneConfig> read_deberta_v2_config(const json& config, const std::string& source) {
  auto c = std::make_shared<DebertaV2Config>();
  json shared = config;
  // Read here: DeBERTa-v3 has no token types (0), and names the head's dropout cls_dropout.
  for (const char* key : {"type_vocab_size", "classifier_dropout"}) shared.erase(key);
  read_encoder_fields(shared, source, *c);
  c->type_vocab_size = integer_field(config, "type_vocab_size", c->type_vocab_size, source);
  c->classifier_dropout = number_field(config, "cls_dropout", -1.0, source);
  c->relative_attention = bool_field(config, "relative_attention", false, source);
  c->max_relative_positions = integer_field(config, "max_relative_positions", -1, source);
  c->position_buckets = integer_field(config, "position_buckets", -1, source);
  c->share_att_key = bool_field(config, "share_att_key", false, source);
  c->position_biased_input = bool_field(config, "position_biased_input", true, source);
  std::vector<std::string> types;
  if (has_field(config, "pos_att_type")) {
    const auto& v = config.at("pos_att_type");
    if (v.is_string()) {
      types = split_bar_list(v.get<std::string>());
    } else if (v.is_array()) {
      for (const auto& item : v) {
        if (!item.is_string()) input_error(source, "field 'pos_att_type' must list strings, got {}", v.dump());
        types.push_back(item.get<std::string>());
      }
    } else {
      input_error(source, "field 'pos_att_type' must be a string or a list, got {}", v.dump());
    }
  }
  for (const auto& type : types) {
    if (type == "c2p") c->c2p = true;
    else if (type == "p2c") c->p2c = true;
    else input_error(source, "pos_att_type '{}' is not supported (c2p, p2c)", type);
  }
  for (const auto& item : split_bar_list(string_field(config, "norm_rel_ebd", "none", source))) {
    if (item == "layer_norm") c->norm_rel_embeddings = true;
    else if (item != "none") input_error(source, "norm_rel_ebd '{}' is not supported (none, layer_norm)", item);
  }
  if (integer_field(config, "embedding_size", c->hidden_size, source) != c->hidden_size)
    input_error(source, "an embedding_size other than hidden_size (embed_proj) is not supported");
  if (integer_field(config, "conv_kernel_size", 0, source) > 0)
    input_error(source, "the convolution layer (conv_kernel_size) is not supported");
  if (integer_field(config, "pooler_hidden_size", c->hidden_size, source) != c->hidden_size)
    input_error(source, "a pooler_hidden_size other than hidden_size is not supported");
  if (integer_field(config, "attention_head_size", c->hidden_size / c->num_attention_heads, source) !=
      c->hidden_size / c->num_attention_heads)
    input_error(source, "an attention_head_size other than hidden_size / num_attention_heads is not supported");
  c->pooler_hidden_act = string_field(config, "pooler_hidden_act", "gelu", source);
  c->pooler_dropout = number_field(config, "pooler_dropout", 0.0, source);
  c->max_position_embeddings = c->position_table_size;  // no offset: positions 0, 1, 2, ...
  return c;
}

torch::Tensor deberta_relative_positions(int64_t size, int64_t bucket_size, int64_t max_position) {
  auto ids = torch::arange(size, torch::kLong);
  auto relative = ids.unsqueeze(1) - ids.unsqueeze(0);
  if (bucket_size <= 0 || max_position <= 0) return relative;
  // Distances up to mid stay; beyond, ceil(log(|d| / mid) / log((max - 1) / mid) * (mid - 1)) + mid with
  // the sign, in float32 as transformers computes it (the rounding decides bucket edges).
  const int64_t mid = bucket_size / 2;
  auto sign = torch::sign(relative);
  auto inside = (relative < mid).logical_and(relative > -mid);
  auto magnitude = torch::where(inside, torch::full_like(relative, mid - 1), relative.abs());
  auto log_span = torch::log(torch::tensor(float(double(max_position - 1) / double(mid)), torch::kFloat));
  auto log_position = torch::ceil(torch::log(magnitude.to(torch::kFloat) / float(mid)) / log_span * float(mid - 1)) + float(mid);
  auto bucket = torch::where(magnitude <= mid, relative.to(torch::kFloat), log_position * sign.to(torch::kFloat));
  return bucket.to(torch::kLong);
}

// ---- Modules ----

DebertaEmbeddingsImpl::DebertaEmbeddingsImpl(const DebertaV2Config& c) : dropout_(c.hidden_dropout_prob) {
  word_embeddings = register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
  init_normal(word_embeddings->weight, c.initializer_range, c.pad_token_id);
  if (c.position_biased_input) {
    position_embeddings = register_module("position_embeddings", torch::nn::Embedding(c.position_table_size, c.hidden_size));
    init_normal(position_embeddings->weight, c.initializer_range);
  }
  if (c.type_vocab_size > 0) {
    token_type_embeddings = register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
    init_normal(token_type_embeddings->weight, c.initializer_range);
  }
  LayerNorm = register_module("LayerNorm", layer_norm(c));
}

torch::Tensor DebertaEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                             const torch::Tensor& mask) {
  auto x = word_embeddings(input_ids);
  if (position_embeddings) x = x + position_embeddings(torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong)));
  if (token_type_embeddings) x = x + token_type_embeddings(token_type_ids);
  x = LayerNorm(x);
  if (mask.defined()) x = x * mask.unsqueeze(-1).to(x.scalar_type());
  return F::dropout(x, F::DropoutFuncOptions().p(dropout_).training(is_training()));
}

DisentangledSelfAttentionImpl::DisentangledSelfAttentionImpl(const DebertaV2Config& c, const std::string& prefix)
    : heads_(c.num_attention_heads), head_dim_(c.head_dim()), span_(c.attention_span()), c2p_(c.relative_attention && c.c2p),
      p2c_(c.relative_attention && c.p2c), share_(c.share_att_key),
      scale_(std::sqrt(double(c.head_dim() * c.scale_factor()))), dropout_(c.attention_probs_dropout_prob),
      position_dropout_(c.hidden_dropout_prob) {
  const int64_t H = c.hidden_size;
  query_proj = register_module("query_proj", AdaptableLinear(prefix + "query_proj", H, H, true));
  key_proj = register_module("key_proj", AdaptableLinear(prefix + "key_proj", H, H, true));
  value_proj = register_module("value_proj", AdaptableLinear(prefix + "value_proj", H, H, true));
  for (auto* slot : {&query_proj, &key_proj, &value_proj}) init_linear(*slot, c.initializer_range);
  if (c.relative_attention && !share_) {
    if (c2p_) pos_key_proj = register_module("pos_key_proj", torch::nn::Linear(H, H));
    if (p2c_) pos_query_proj = register_module("pos_query_proj", torch::nn::Linear(H, H));
    for (auto* linear : {&pos_key_proj, &pos_query_proj})
      if (*linear) {
        init_normal((*linear)->weight, c.initializer_range);
        torch::NoGradGuard no_grad;
        (*linear)->bias.zero_();
      }
  }
}

torch::Tensor DisentangledSelfAttentionImpl::split_heads(const torch::Tensor& t) const {
  return t.view({t.size(0), t.size(1), heads_, head_dim_}).transpose(1, 2);  // (B, heads, T, head_dim)
}

torch::Tensor DisentangledSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& hidden_keys,
                                                     const torch::Tensor& padded_queries,
                                                     const torch::Tensor& relative_positions,
                                                     const torch::Tensor& relative_embeddings) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = split_heads(query_proj(x)), k = split_heads(key_proj(x)), v = split_heads(value_proj(x));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / scale_;
  if ((c2p_ || p2c_) && relative_embeddings.defined()) {
    auto r = F::dropout(relative_embeddings, F::DropoutFuncOptions().p(position_dropout_).training(is_training()))
                 .narrow(0, 0, 2 * span_)
                 .unsqueeze(0);
    if (c2p_) {
      // Query i against the embedding of distance i - j: index distance + span, clamped to the table.
      auto position_keys = split_heads(share_ ? key_proj(r) : pos_key_proj(r));
      auto c2p = torch::matmul(q, position_keys.transpose(-2, -1));
      auto index = (relative_positions + span_).clamp(0, 2 * span_ - 1).expand({B, heads_, T, T});
      scores = scores + c2p.gather(-1, index) / scale_;
    }
    if (p2c_) {
      // Key j against the embedding of distance j - i (row j of the distance table, negated), transposed.
      auto position_queries = split_heads(share_ ? query_proj(r) : pos_query_proj(r));
      auto p2c = torch::matmul(k, position_queries.transpose(-2, -1));
      auto index = (span_ - relative_positions).clamp(0, 2 * span_ - 1).expand({B, heads_, T, T});
      scores = scores + p2c.gather(-1, index).transpose(-1, -2) / scale_;
    }
  }
  scores = scores.to(torch::promote_types(scores.scalar_type(), torch::kFloat32));
  if (hidden_keys.defined()) {
    const double lowest = scores.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                                                                  : double(std::numeric_limits<float>::lowest());
    scores = scores.masked_fill(hidden_keys, lowest);
  }
  auto probs = torch::softmax(scores, -1);
  // XSoftmax gives a padding query no attention at all.
  if (padded_queries.defined()) probs = probs.masked_fill(padded_queries, 0.0);
  probs = F::dropout(probs.to(q.scalar_type()), F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return torch::matmul(probs, v).transpose(1, 2).reshape({B, T, heads_ * head_dim_});
}

DebertaAttentionImpl::DebertaAttentionImpl(const DebertaV2Config& c, const std::string& prefix) {
  self = register_module("self", DisentangledSelfAttention(c, prefix + "self."));
  output = register_module("output", EncoderOutput(c, prefix + "output.dense", c.hidden_size));
}

DebertaLayerImpl::DebertaLayerImpl(const DebertaV2Config& c, int64_t index) {
  const std::string prefix = fmt::format("encoder.layer.{}.", index);
  attention = register_module("attention", DebertaAttention(c, prefix + "attention."));
  intermediate = register_module("intermediate", EncoderIntermediate(c, prefix + "intermediate."));
  output = register_module("output", EncoderOutput(c, prefix + "output.dense", c.intermediate_size));
}

torch::Tensor DebertaLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& hidden_keys,
                                        const torch::Tensor& padded_queries, const torch::Tensor& relative_positions,
                                        const torch::Tensor& relative_embeddings) {
  auto attended = attention->output(
      attention->self(x, hidden_keys, padded_queries, relative_positions, relative_embeddings), x);
  return output(intermediate(attended), attended);
}

// ---- DebertaV2Impl ----

DebertaV2Impl::DebertaV2Impl(const DebertaV2Config& config)
    : config_(std::static_pointer_cast<const DebertaV2Config>(config.clone())) {
  const auto& c = *config_;
  c.validate("model config");
  embeddings = register_module("embeddings", DebertaEmbeddings(c));
  encoder = std::make_shared<torch::nn::Module>();
  auto blocks = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list_.push_back(DebertaLayer(c, i));
    blocks->push_back(layer_list_.back());
  }
  if (c.relative_attention) {
    rel_embeddings = encoder->register_module("rel_embeddings", torch::nn::Embedding(2 * c.attention_span(), c.hidden_size));
    init_normal(rel_embeddings->weight, c.initializer_range);
  }
  if (c.norm_rel_embeddings) rel_norm = encoder->register_module("LayerNorm", layer_norm(c));
  register_module("encoder", encoder);
}

torch::Tensor DebertaV2Impl::hidden_states(const BackboneInputs& in) {
  const auto& c = *config_;
  if (in.cache != nullptr || in.start_pos != 0 || in.position_ids.defined())
    throw std::invalid_argument(c.family + " is an encoder: it reads whole sequences (no KV cache, start_pos 0, "
                                "no position_ids)");
  const auto& ids = in.input_ids;
  const int64_t B = ids.size(0), T = ids.size(1);
  if (T > c.max_position_embeddings)
    throw std::invalid_argument(fmt::format("sequence of {} positions exceeds the model's {} positions", T, c.max_position_embeddings));
  // Without token type embeddings (DeBERTa-v3) the type ids are ignored, as transformers does.
  torch::Tensor types = c.type_vocab_size > 0 ? in.token_type_ids : torch::Tensor();
  if (types.defined() && types.numel() > 0) {
    if (!types.sizes().equals(ids.sizes())) throw std::invalid_argument("token_type_ids must have the shape of input_ids");
    if (types.min().item<int64_t>() < 0 || types.max().item<int64_t>() >= c.type_vocab_size)
      throw std::invalid_argument(fmt::format("token type ids must be in [0, {})", c.type_vocab_size));
  }
  if (!types.defined() || types.numel() == 0) types = torch::zeros_like(ids, ids.options().dtype(torch::kLong));
  torch::Tensor mask, hidden_keys, padded_queries;
  if (in.attention_mask.defined()) {
    if (!in.attention_mask.sizes().equals(ids.sizes()))
      throw std::invalid_argument(fmt::format("attention_mask covers {} positions; the forward pass sees {}",
                                              in.attention_mask.size(-1), T));
    if ((in.attention_mask == 0).any().item<bool>()) {
      mask = in.attention_mask;
      hidden_keys = (in.attention_mask == 0).view({B, 1, 1, T});
      padded_queries = (in.attention_mask == 0).view({B, 1, T, 1});
    }
  }
  auto x = embeddings(ids, types, mask);
  torch::Tensor relative_positions, relative;
  if (c.relative_attention) {
    relative_positions = deberta_relative_positions(T, c.position_buckets, c.max_relative()).to(ids.device());
    relative = rel_embeddings->weight;
    if (rel_norm) relative = rel_norm(relative);
  }
  const bool checkpoint = activation_checkpointing() && torch::GradMode::is_enabled();
  for (auto& block : layer_list_) {
    if (!checkpoint) {
      x = block->forward(x, hidden_keys, padded_queries, relative_positions, relative);
      continue;
    }
    std::vector<torch::Tensor> trainable;
    for (const auto& p : block->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    if (relative.defined() && relative.requires_grad()) trainable.push_back(relative);
    DebertaLayer layer = block;
    x = checkpointed(
        [layer, hidden_keys, padded_queries, relative_positions, relative](const torch::Tensor& input) mutable {
          return layer->forward(input, hidden_keys, padded_queries, relative_positions, relative);
        },
        x, trainable);
  }
  return x;
}

std::vector<AdaptableLinear> DebertaV2Impl::slots() const {
  std::vector<AdaptableLinear> out;
  for (const auto& block : layer_list_) {
    out.push_back(block->attention->self->query_proj);
    out.push_back(block->attention->self->key_proj);
    out.push_back(block->attention->self->value_proj);
    out.push_back(block->attention->output->dense);
    out.push_back(block->intermediate->dense);
    out.push_back(block->output->dense);
  }
  return out;
}

ContextPoolerClassifierImpl::ContextPoolerClassifierImpl(const DebertaV2Config& c, int64_t num_outputs)
    : pooler_dropout_(c.pooler_dropout), classifier_dropout_(c.head_dropout()),
      tanh_gelu_(c.pooler_hidden_act != "gelu") {
  pooler = register_module("pooler", std::make_shared<torch::nn::Module>());
  pooler_dense = pooler->register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  classifier = register_module("classifier", torch::nn::Linear(c.hidden_size, num_outputs));
  init_head_linear(pooler_dense, c.initializer_range);
  init_head_linear(classifier, c.initializer_range);
}

torch::Tensor ContextPoolerClassifierImpl::forward(const torch::Tensor& hidden, const torch::Tensor&) {
  auto x = F::dropout(hidden.select(1, 0), F::DropoutFuncOptions().p(pooler_dropout_).training(is_training()));
  x = F::gelu(pooler_dense(x), F::GELUFuncOptions().approximate(tanh_gelu_ ? "tanh" : "none"));
  return classifier(F::dropout(x, F::DropoutFuncOptions().p(classifier_dropout_).training(is_training())));
}

}  // namespace peftlab
