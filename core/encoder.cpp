#include "core/encoder.h"

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

bool is_tanh_gelu(const std::string& act) { return act == "gelu_new" || act == "gelu_pytorch_tanh"; }

}  // namespace

// ---- EncoderConfig ----

void EncoderConfig::validate(const std::string& source) const {
  check_common_sizes(*this, intermediate_size, num_attention_heads, position_table_size, source);
  check_size(type_vocab_size, "type_vocab_size", kMaxDimension, source);
  if (hidden_size % num_attention_heads != 0)
    input_error(source, "hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads);
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    input_error(source, "field 'pad_token_id' is {}, outside the vocabulary of {}", pad_token_id, vocab_size);
  if (positions_after_padding && position_table_size <= pad_token_id + 1)
    input_error(source, "max_position_embeddings {} leaves no position after padding_idx {} ({} counts positions "
                "from padding_idx + 1)", position_table_size, pad_token_id, family);
  const int64_t usable = position_table_size - (positions_after_padding ? pad_token_id + 1 : 0);
  if (max_position_embeddings != usable)
    input_error(source, "{} positions usable, but the config says {}", usable, max_position_embeddings);
  if (!(layer_norm_eps > 0)) input_error(source, "field 'layer_norm_eps' must be positive, got {}", layer_norm_eps);
  if (hidden_act != "gelu" && !is_tanh_gelu(hidden_act))
    input_error(source, "hidden_act '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh)", hidden_act);
  auto probability = [&](double p, const char* name) {
    if (!(p >= 0 && p < 1)) input_error(source, "field '{}' must be in [0, 1), got {}", name, p);
  };
  probability(hidden_dropout_prob, "hidden_dropout_prob");
  probability(attention_probs_dropout_prob, "attention_probs_dropout_prob");
  if (classifier_dropout >= 0) probability(classifier_dropout, "classifier_dropout");
  if (parameter_count() > kMaxParameters)
    input_error(source, "the config implies {} parameters, beyond the sanity bound {}", parameter_count(), kMaxParameters);
}

std::vector<std::string> EncoderConfig::module_names() const { return {"query", "key", "value", "dense"}; }

std::vector<SlotShape> EncoderConfig::slot_shapes() const {
  std::vector<SlotShape> slots;
  const int64_t H = hidden_size, I = intermediate_size;
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer) {
    const std::string prefix = fmt::format("encoder.layer.{}.", layer);
    slots.push_back({prefix + "attention.self.query", "query", H, H, true});
    slots.push_back({prefix + "attention.self.key", "key", H, H, true});
    slots.push_back({prefix + "attention.self.value", "value", H, H, true});
    slots.push_back({prefix + "attention.output.dense", "dense", H, H, true});
    slots.push_back({prefix + "intermediate.dense", "dense", H, I, true});
    slots.push_back({prefix + "output.dense", "dense", I, H, true});
  }
  return slots;
}

std::vector<ParameterShape> EncoderConfig::parameter_shapes() const {
  const int64_t H = hidden_size;
  std::vector<ParameterShape> out = {
      {"embeddings.word_embeddings.weight", {vocab_size, H}},
      {"embeddings.position_embeddings.weight", {position_table_size, H}},
      {"embeddings.token_type_embeddings.weight", {type_vocab_size, H}},
      {"embeddings.LayerNorm.weight", {H}},
      {"embeddings.LayerNorm.bias", {H}},
  };
  const auto slots = slot_shapes();
  for (const auto& s : slots) {
    out.push_back({s.name + ".weight", {s.out_features, s.in_features}});
    out.push_back({s.name + ".bias", {s.out_features}});
    // A LayerNorm follows each "output.dense" (attention.output and the block's output).
    const std::string suffix = "output.dense";
    if (s.name.size() > suffix.size() && s.name.compare(s.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string norm = s.name.substr(0, s.name.size() - 5) + "LayerNorm";  // "...output.LayerNorm"
      out.push_back({norm + ".weight", {H}});
      out.push_back({norm + ".bias", {H}});
    }
  }
  return out;
}

std::string EncoderConfig::describe() const {
  std::string text = fmt::format("{}: post-LN encoder, dim {}, hidden {}, {} layers, {} heads (head_dim {}), vocab {}, "
                                 "{} positions, {} token type(s), {}",
                                 family, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                                 head_dim(), vocab_size, max_position_embeddings, type_vocab_size, hidden_act);
  if (positions_after_padding) text += fmt::format(", positions from padding_idx {} + 1", pad_token_id);
  return text;
}

json EncoderConfig::to_hf_json() const {
  json j{{"architectures", {architecture}},
         {"model_type", family},
         {"hidden_act", hidden_act},
         {"hidden_size", hidden_size},
         {"intermediate_size", intermediate_size},
         {"num_hidden_layers", num_hidden_layers},
         {"num_attention_heads", num_attention_heads},
         {"vocab_size", vocab_size},
         {"max_position_embeddings", position_table_size},
         {"type_vocab_size", type_vocab_size},
         {"layer_norm_eps", layer_norm_eps},
         {"hidden_dropout_prob", hidden_dropout_prob},
         {"attention_probs_dropout_prob", attention_probs_dropout_prob},
         {"classifier_dropout", classifier_dropout >= 0 ? json(classifier_dropout) : json(nullptr)},
         {"initializer_range", initializer_range},
         {"pad_token_id", pad_token_id},
         {"position_embedding_type", "absolute"},
         {"torch_dtype", "float32"}};
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  return j;
}

Backbone EncoderConfig::build() const { return std::make_shared<EncoderImpl>(*this); }

void read_encoder_fields(const json& config, const std::string& source, EncoderConfig& c) {
  c.hidden_act = string_field(config, "hidden_act", c.hidden_act, source);
  const std::string positions = string_field(config, "position_embedding_type", "absolute", source);
  if (positions != "absolute")
    input_error(source, "position_embedding_type '{}' is not supported (absolute)", positions);
  if (bool_field(config, "is_decoder", false, source) || bool_field(config, "add_cross_attention", false, source))
    input_error(source, "{} as a decoder (is_decoder, add_cross_attention) is not supported", c.family);
  c.hidden_size = size_field(config, "hidden_size", c.hidden_size, kMaxDimension, source);
  c.intermediate_size = size_field(config, "intermediate_size", c.intermediate_size, kMaxDimension, source);
  c.num_hidden_layers = size_field(config, "num_hidden_layers", c.num_hidden_layers, kMaxLayers, source);
  c.num_attention_heads = size_field(config, "num_attention_heads", c.num_attention_heads, kMaxDimension, source);
  c.vocab_size = size_field(config, "vocab_size", c.vocab_size, kMaxDimension, source);
  c.type_vocab_size = size_field(config, "type_vocab_size", c.type_vocab_size, kMaxDimension, source);
  c.position_table_size = size_field(config, "max_position_embeddings", c.position_table_size, kMaxDimension, source);
  c.layer_norm_eps = number_field(config, "layer_norm_eps", c.layer_norm_eps, source);
  c.hidden_dropout_prob = number_field(config, "hidden_dropout_prob", c.hidden_dropout_prob, source);
  c.attention_probs_dropout_prob =
      number_field(config, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, source);
  c.classifier_dropout = number_field(config, "classifier_dropout", c.classifier_dropout, source);
  c.initializer_range = number_field(config, "initializer_range", c.initializer_range, source);
  if (has_field(config, "pad_token_id")) {
    const auto& v = config.at("pad_token_id");
    if (!v.is_number_integer()) input_error(source, "field 'pad_token_id' must be an integer, got {}", v.dump());
    c.pad_token_id = v.get<int64_t>();
  }
  for (auto [key, field] : {std::pair<const char*, int64_t*>{"bos_token_id", &c.bos_token_id},
                            std::pair<const char*, int64_t*>{"eos_token_id", &c.eos_token_id}})
    if (has_field(config, key) && config.at(key).is_number_integer()) *field = config.at(key).get<int64_t>();
  c.max_position_embeddings = c.position_table_size - (c.positions_after_padding ? c.pad_token_id + 1 : 0);
}

void init_head_linear(torch::nn::Linear& linear, double std) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(linear->weight, 0.0, std);
  if (linear->bias.defined()) linear->bias.zero_();
}

// ---- Modules ----

namespace {

torch::nn::LayerNorm layer_norm(const EncoderConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

// transformers' _init_weights: Linear and Embedding weights normal(0, initializer_range), biases and the
// padding row zero (LayerNorm starts at 1 and 0 already).
void init_linear(AdaptableLinear& linear, double std) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(linear->weight, 0.0, std);
  if (linear->bias.defined()) linear->bias.zero_();
}

void init_embedding(torch::nn::Embedding& embedding, double std, int64_t padding_row) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(embedding->weight, 0.0, std);
  if (padding_row >= 0) embedding->weight[padding_row].zero_();
}

}  // namespace

EncoderEmbeddingsImpl::EncoderEmbeddingsImpl(const EncoderConfig& c) : dropout_(c.hidden_dropout_prob) {
  // The padding rows get no gradient, as nn.Embedding(padding_idx=...) in transformers.
  word_embeddings = register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
  auto position_options = torch::nn::EmbeddingOptions(c.position_table_size, c.hidden_size);
  if (c.positions_after_padding) position_options.padding_idx(c.pad_token_id);
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(position_options));
  token_type_embeddings = register_module("token_type_embeddings",
                                          torch::nn::Embedding(torch::nn::EmbeddingOptions(c.type_vocab_size, c.hidden_size)));
  LayerNorm = register_module("LayerNorm", layer_norm(c));
  init_embedding(word_embeddings, c.initializer_range, c.pad_token_id);
  init_embedding(position_embeddings, c.initializer_range, c.positions_after_padding ? c.pad_token_id : -1);
  init_embedding(token_type_embeddings, c.initializer_range, -1);
}

torch::Tensor EncoderEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                             const torch::Tensor& position_ids) {
  auto x = word_embeddings(input_ids) + token_type_embeddings(token_type_ids) + position_embeddings(position_ids);
  return F::dropout(LayerNorm(x), F::DropoutFuncOptions().p(dropout_).training(is_training()));
}

EncoderSelfAttentionImpl::EncoderSelfAttentionImpl(const EncoderConfig& c, const std::string& prefix)
    : heads_(c.num_attention_heads), head_dim_(c.head_dim()), dropout_(c.attention_probs_dropout_prob) {
  const int64_t H = c.hidden_size;
  query = register_module("query", AdaptableLinear(prefix + "query", H, H, true));
  key = register_module("key", AdaptableLinear(prefix + "key", H, H, true));
  value = register_module("value", AdaptableLinear(prefix + "value", H, H, true));
  for (auto* slot : {&query, &key, &value}) init_linear(*slot, c.initializer_range);
}

torch::Tensor EncoderSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& hidden_keys) {
  const int64_t B = x.size(0), T = x.size(1), D = head_dim_;
  auto q = query(x).view({B, T, heads_, D}).transpose(1, 2);
  auto k = key(x).view({B, T, heads_, D}).transpose(1, 2);
  auto v = value(x).view({B, T, heads_, D}).transpose(1, 2);
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(D));
  // Softmax in at least float32; a padding key gets the lowest finite score, as transformers' additive mask
  // (a row whose keys are all padding then attends uniformly instead of giving NaN).
  scores = scores.to(torch::promote_types(scores.scalar_type(), torch::kFloat32));
  if (hidden_keys.defined()) {
    const double lowest = scores.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                                                                  : double(std::numeric_limits<float>::lowest());
    scores = scores.masked_fill(hidden_keys, lowest);
  }
  auto probs = torch::softmax(scores, -1).to(q.scalar_type());
  probs = F::dropout(probs, F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return torch::matmul(probs, v).transpose(1, 2).reshape({B, T, heads_ * D});
}

EncoderOutputImpl::EncoderOutputImpl(const EncoderConfig& c, const std::string& slot, int64_t in_features)
    : dropout_(c.hidden_dropout_prob) {
  dense = register_module("dense", AdaptableLinear(slot, in_features, c.hidden_size, true));
  LayerNorm = register_module("LayerNorm", layer_norm(c));
  init_linear(dense, c.initializer_range);
}

torch::Tensor EncoderOutputImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  auto h = F::dropout(dense(x), F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return LayerNorm(h + residual);
}

EncoderAttentionImpl::EncoderAttentionImpl(const EncoderConfig& c, const std::string& prefix) {
  self = register_module("self", EncoderSelfAttention(c, prefix + "self."));
  output = register_module("output", EncoderOutput(c, prefix + "output.dense", c.hidden_size));
}

torch::Tensor EncoderAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& hidden_keys) {
  return output(self(x, hidden_keys), x);
}

EncoderIntermediateImpl::EncoderIntermediateImpl(const EncoderConfig& c, const std::string& prefix)
    : tanh_gelu_(is_tanh_gelu(c.hidden_act)) {
  dense = register_module("dense", AdaptableLinear(prefix + "dense", c.hidden_size, c.intermediate_size, true));
  init_linear(dense, c.initializer_range);
}

torch::Tensor EncoderIntermediateImpl::forward(const torch::Tensor& x) {
  // "gelu" is the exact GELU, x * Phi(x) with erf; gelu_new and gelu_pytorch_tanh the tanh approximation.
  return F::gelu(dense(x), F::GELUFuncOptions().approximate(tanh_gelu_ ? "tanh" : "none"));
}

EncoderLayerImpl::EncoderLayerImpl(const EncoderConfig& c, int64_t index) {
  const std::string prefix = fmt::format("encoder.layer.{}.", index);
  attention = register_module("attention", EncoderAttention(c, prefix + "attention."));
  intermediate = register_module("intermediate", EncoderIntermediate(c, prefix + "intermediate."));
  output = register_module("output", EncoderOutput(c, prefix + "output.dense", c.intermediate_size));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& hidden_keys) {
  auto attended = attention(x, hidden_keys);
  return output(intermediate(attended), attended);
}

// ---- EncoderImpl ----

EncoderImpl::EncoderImpl(const EncoderConfig& config)
    : config_(std::static_pointer_cast<const EncoderConfig>(config.clone())) {
  config_->validate("model config");
  embeddings = register_module("embeddings", EncoderEmbeddings(*config_));
  encoder = std::make_shared<torch::nn::Module>();
  auto blocks = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_->num_hidden_layers; ++i) {
    layer_list_.push_back(EncoderLayer(*config_, i));
    blocks->push_back(layer_list_.back());
  }
  register_module("encoder", encoder);
}

torch::Tensor EncoderImpl::position_ids(const torch::Tensor& input_ids) const {
  const auto& c = *config_;
  if (!c.positions_after_padding)
    return torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong)).unsqueeze(0).expand_as(input_ids);
  // transformers' create_position_ids_from_input_ids: real tokens count from padding_idx + 1, padding stays
  // at padding_idx.
  auto real = (input_ids != c.pad_token_id).to(torch::kLong);
  return real.cumsum(1) * real + c.pad_token_id;
}

torch::Tensor EncoderImpl::hidden_states(const BackboneInputs& in) {
  const auto& c = *config_;
  if (in.cache != nullptr || in.start_pos != 0 || in.position_ids.defined())
    throw std::invalid_argument(c.family + " is an encoder: it reads whole sequences (no KV cache, start_pos 0, "
                                "no position_ids)");
  const auto& ids = in.input_ids;
  const int64_t B = ids.size(0), T = ids.size(1);
  if (T > c.max_position_embeddings)
    throw std::invalid_argument(
        fmt::format("sequence of {} positions exceeds the model's {} positions", T, c.max_position_embeddings));
  torch::Tensor types = in.token_type_ids;
  if (!types.defined()) {
    types = torch::zeros_like(ids, ids.options().dtype(torch::kLong));
  } else {
    if (!types.sizes().equals(ids.sizes()))
      throw std::invalid_argument("token_type_ids must have the shape of input_ids");
    if (types.numel() > 0 && (types.min().item<int64_t>() < 0 || types.max().item<int64_t>() >= c.type_vocab_size))
      throw std::invalid_argument(fmt::format("token type ids must be in [0, {})", c.type_vocab_size));
  }
  torch::Tensor hidden_keys;
  if (in.attention_mask.defined()) {
    if (!in.attention_mask.sizes().equals(ids.sizes()))
      throw std::invalid_argument(fmt::format("attention_mask covers {} positions; the forward pass sees {}",
                                              in.attention_mask.size(-1), T));
    if ((in.attention_mask == 0).any().item<bool>()) hidden_keys = (in.attention_mask == 0).view({B, 1, 1, T});
  }
  auto x = embeddings(ids, types, position_ids(ids));
  const bool checkpoint = activation_checkpointing() && torch::GradMode::is_enabled();
  for (auto& block : layer_list_) {
    if (!checkpoint) {
      x = block->forward(x, hidden_keys);
      continue;
    }
    std::vector<torch::Tensor> trainable;
    for (const auto& p : block->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    EncoderLayer layer = block;
    // Captured by value: the block runs again during backward, after this function has returned.
    x = checkpointed([layer, hidden_keys](const torch::Tensor& input) mutable { return layer->forward(input, hidden_keys); },
                     x, trainable);
  }
  return x;
}

SequenceHead EncoderImpl::make_sequence_head(int64_t num_outputs) const {
  SequenceHead head = config_->make_head(num_outputs);
  torch::NoGradGuard no_grad;
  for (auto& item : head->named_parameters()) {
    auto it = checkpoint_head_.find(head->hf_key(item.key()));
    if (it != checkpoint_head_.end() && it->second.sizes().equals(item.value().sizes())) item.value().copy_(it->second);
  }
  return head;
}

std::vector<AdaptableLinear> EncoderImpl::slots() const {
  std::vector<AdaptableLinear> out;
  for (const auto& block : layer_list_) {
    out.push_back(block->attention->self->query);
    out.push_back(block->attention->self->key);
    out.push_back(block->attention->self->value);
    out.push_back(block->attention->output->dense);
    out.push_back(block->intermediate->dense);
    out.push_back(block->output->dense);
  }
  return out;
}

}  // namespace peftlab
