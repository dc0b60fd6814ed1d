// The interface every model family implements (a "backbone": the transformer body with the heads its
// Hugging Face classes put on top), and the family registry keyed by config.json's model_type.
//
// Generic code (methods, tasks, experiments, tools, bench) sees only these types: a BackboneConfig (the shape,
// known from config.json alone, so `plan` needs no weights), a BackboneImpl (the model: hidden states, LM
// logits for decoders, the adaptable slots, the family's sequence-classification head) and the registry.
// docs/models.md says how to add a family.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/adaptable_linear.h"

namespace peftlab {

class BackboneImpl;
using Backbone = std::shared_ptr<BackboneImpl>;

// Keys and values of past positions, one pair per layer, for incremental decoding.
struct KVCache {
  std::vector<torch::Tensor> keys, values;  // (B, n_kv_heads, T_past, head_dim)
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

// One adaptable Linear, known from the config alone.
struct SlotShape {
  std::string name;    // stable slot name, the module's path in the backbone: "layers.0.self_attn.q_proj"
  std::string module;  // short name, PEFT's target_modules entry: "q_proj"
  int64_t in_features = 0, out_features = 0;
  bool has_bias = false;
};

// One parameter of the backbone: stable name (as named_parameters() reports it) and shape.
struct ParameterShape {
  std::string name;
  std::vector<int64_t> shape;
};

// A family's configuration behind the fields generic code needs. Families derive their own struct (the
// decoder families share DecoderConfig) and fill the common fields from their config.json names.
class BackboneConfig {
 public:
  virtual ~BackboneConfig() = default;

  int64_t hidden_size = 0;              // width of the hidden states
  int64_t num_hidden_layers = 0;
  int64_t vocab_size = 0;               // rows of the input embedding (a tokenizer may use fewer)
  int64_t max_position_embeddings = 0;  // longest sequence the model takes

  // config.json's model_type: "llama", "mistral", "qwen2", ...
  virtual std::string model_type() const = 0;
  // Causal decoder: has LM logits and generates with a KV cache.
  virtual bool is_decoder() const = 0;
  // InputError(source, ...) naming the field when the shape is inconsistent or out of the sanity bounds.
  virtual void validate(const std::string& source) const = 0;
  // Every backbone parameter (no task head), in named_parameters() order; computed without allocating.
  virtual std::vector<ParameterShape> parameter_shapes() const = 0;
  int64_t parameter_count() const;
  // Every adaptable slot, in BackboneImpl::slots() order.
  virtual std::vector<SlotShape> slot_shapes() const = 0;
  // The short module names of the slots, in slot order within a layer ("q_proj", ... "down_proj").
  virtual std::vector<std::string> module_names() const = 0;
  // PEFT's default target_modules for the family (llama, mistral, qwen2: q_proj, v_proj).
  virtual std::vector<std::string> default_target_modules() const = 0;
  // One line for `plan`: "llama: dim 288, hidden 768, 6 layers, ...".
  virtual std::string describe() const = 0;
  // The config.json that reads back into this config.
  virtual nlohmann::json to_hf_json() const = 0;

  // Hugging Face key map. A backbone parameter's safetensors key in the family's *ForCausalLM (decoders) or
  // base model file ("layers.0.self_attn.q_proj.weight" -> "model.layers.0.self_attn.q_proj.weight").
  virtual std::string hf_key(const std::string& parameter) const = 0;
  // A slot's module path inside the family's *ForCausalLM / *ForSequenceClassification, as PEFT names it
  // under "base_model.model." ("layers.0.self_attn.q_proj" -> "model.layers.0.self_attn.q_proj").
  virtual std::string hf_module_name(const std::string& slot) const = 0;
  // Tensors indexed by a slot's output rows (weight, bias, lora_B, magnitude) between the backbone's own row
  // order and Hugging Face's; the identity unless the family stores rows differently (llama2.c's interleaved
  // rotary pairs). `rows` has the output dimension first.
  virtual torch::Tensor output_rows_to_hf(const std::string& slot, const torch::Tensor& rows, bool to_hf) const;

  // A model of this shape with freshly initialised weights (PyTorch's defaults, as the family's Python class).
  virtual Backbone build() const = 0;
  virtual std::shared_ptr<BackboneConfig> clone() const = 0;
};
using BackboneConfigPtr = std::shared_ptr<const BackboneConfig>;

// The inputs of one forward pass.
struct BackboneInputs {
  torch::Tensor input_ids;       // (B, T) int64
  torch::Tensor attention_mask;  // (B, S) 1 on real tokens, 0 on padding; S = past + T; undefined: all real
  torch::Tensor token_type_ids;  // (B, T) for families with segment embeddings (encoders); undefined: zeros
  int64_t start_pos = 0;         // index of input_ids[:, 0] in the sequence (past length with a KV cache)
  // (B, T) int64 position of each token for position embeddings, when rows differ (a left-padded batch: each
  // row counts from its first real token, as Hugging Face's position_ids); undefined: start_pos + t.
  torch::Tensor position_ids;
  KVCache* cache = nullptr;      // extended in place; decoders only
};

// The family's sequence-classification head, as its *ForSequenceClassification builds it: decoders score the
// last non-padding token with a Linear without bias ("score"); encoders pool and classify ("classifier", ...).
class SequenceHeadImpl : public torch::nn::Module {
 public:
  // hidden: (B, T, hidden_size) from hidden_states(); attention_mask (B, T) -> (B, num_outputs).
  virtual torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) = 0;
  // A head parameter's key in the *ForSequenceClassification model ("weight" -> "score.weight").
  virtual std::string hf_key(const std::string& parameter) const = 0;
};
using SequenceHead = std::shared_ptr<SequenceHeadImpl>;

class BackboneImpl : public torch::nn::Module {
 public:
  virtual const BackboneConfig& config() const = 0;

  // Final hidden states (after the last norm for pre-norm decoders): (B, T, hidden_size).
  virtual torch::Tensor hidden_states(const BackboneInputs& inputs) = 0;
  torch::Tensor hidden_states(const torch::Tensor& input_ids, int64_t start_pos = 0, KVCache* cache = nullptr);
  // Causal-LM logits (B, T, vocab) from hidden states; decoders only (std::logic_error otherwise).
  virtual torch::Tensor logits(const torch::Tensor& hidden);
  torch::Tensor forward(const torch::Tensor& input_ids, int64_t start_pos = 0, KVCache* cache = nullptr) {
    return logits(hidden_states(input_ids, start_pos, cache));
  }
  // The output projection's weight (vocab, hidden) when logits() is exactly hidden @ weight^T, so that the
  // causal-LM loss can be computed in tiles without the logits (core/lm_loss.h); undefined otherwise.
  virtual torch::Tensor lm_head_weight() { return {}; }

  // Every adaptable slot, in a stable order (config().slot_shapes() order).
  virtual std::vector<AdaptableLinear> slots() const = 0;
  AdaptableLinear slot(const std::string& name) const;  // throws std::out_of_range

  // A new sequence-classification head with `num_outputs` outputs, initialised as the family's Python class
  // does, and the module name under which the task model registers it ("score" for decoders).
  virtual SequenceHead make_sequence_head(int64_t num_outputs) const = 0;
  virtual std::string sequence_head_name() const = 0;

  // Activation checkpointing (Hugging Face's gradient_checkpointing_enable): while autograd records, each
  // layer keeps only its input and runs again during backward. One more forward, far less memory.
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }

 private:
  bool activation_checkpointing_ = false;
};

// A model family: reads its config.json (with the family's defaults) into its config type.
struct BackboneFamily {
  std::string model_type;  // config.json's model_type
  // `config` is config.json's object; `source` names the file in errors.
  std::shared_ptr<BackboneConfig> (*read_config)(const nlohmann::json& config, const std::string& source);
};

// The registered families, in registration order (core/backbone.cpp holds the list).
const std::vector<BackboneFamily>& backbone_families();
// The family of a model_type; InputError(source) listing the known ones when none matches.
const BackboneFamily& backbone_family(const std::string& model_type, const std::string& source);

// Reads config.json (model_type picks the family; missing model_type means llama) and validates it against
// the sanity bounds, before anything is allocated.
BackboneConfigPtr read_backbone_config(const std::filesystem::path& config_json);
// The same from an already parsed object.
BackboneConfigPtr backbone_config_from_json(const nlohmann::json& config, const std::string& source);

// Sanity bounds every family checks: no real model comes near them, and a value beyond them is a corrupt or
// hostile config, refused before allocation.
constexpr int64_t kMaxDimension = int64_t{1} << 24;        // hidden, intermediate, vocab, positions
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxParameters = int64_t{1} << 40;       // about 1.1e12 parameters

}  // namespace peftlab
