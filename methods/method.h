// A fine-tuning method: a strategy factory (HF PEFT's pattern). It reads its options strictly from the spec's
// `method` mapping, decides which slots it adapts (targets, per-module rank/alpha overrides), builds the
// Adapter for each, and knows its trainable-parameter count per slot by formula. Registered in
// methods/registry.cpp; the conformance suite (tests/methods/conformance_test.cpp) runs every registered method.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/adaptable_linear.h"
#include "core/options.h"

namespace peftlab {

// How LoRA's A is drawn: nn.Linear's Kaiming-uniform (PEFT's default) or Gaussian N(0, 1/r).
enum class InitA { kaiming_uniform, gaussian };

// A per-module rank/alpha override: applies to slots whose full name matches `pattern` as PEFT's
// rank_pattern does, i.e. the whole name matches "(.*\.)?(pattern)". The first matching override wins.
struct RankOverride {
  std::string pattern;
  std::optional<int64_t> rank;
  std::optional<double> alpha;
  long line = 0;
  bool matches(const std::string& slot_name) const;
};

// The options every low-rank method shares (the spec keys of the same names).
struct LowRankOptions {
  int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  // Module short names (q_proj ... down_proj), "all-linear", or "regex:<ECMAScript>" over full slot names.
  // Empty: the model family's default (PEFT's per-family target_modules; q_proj, v_proj for the decoders).
  std::vector<std::string> targets;
  bool rslora = false;  // s = alpha / sqrt(r) instead of alpha / r
  InitA init_a = InitA::kaiming_uniform;
  std::vector<RankOverride> overrides;
  long rank_line = 0, targets_line = 0;  // where they were given, for messages
};

// One adapted slot as planned from the model config alone.
struct SlotPlan {
  std::string slot;  // "layers.N.self_attn.q_proj"
  std::string module;  // "q_proj"
  int64_t in_features = 0, out_features = 0;
  int64_t rank = 0;
  double alpha = 0, scaling = 0;
  int64_t trainable_params = 0;  // what the adapter adds and trains
};

// One tensor of a slot's adapter in HF PEFT's format.
struct PeftTensor {
  std::string suffix;         // after the module's key: "lora_A.weight", "vera_lambda_b"
  torch::Tensor value;        // export: the value to write; import: the tensor to fill (same shape)
  bool output_rows = false;   // one row per output feature: permuted for llama2.c's interleaved rotary layout
};

// State a method shares across the slots of one model (VeRA's frozen random projections): a module whose
// buffers the adapters hold as their submodule "shared", so it follows the model's dtype and device.
using SharedState = std::shared_ptr<torch::nn::Module>;

class Method {
 public:
  virtual ~Method() = default;

  // The registry name (`peftlab methods` lists them).
  virtual std::string name() const = 0;
  // Display label for run ids and tables: the spec's `label`, else default_label().
  std::string label() const { return label_.empty() ? default_label() : label_; }
  // The name plus the options that distinguish this configuration, e.g. "<name>-r8", "<name>-r8-in_first".
  virtual std::string default_label() const = 0;
  // True for full fine-tuning: no adapters, every backbone weight trains.
  virtual bool trains_base_weights() const { return false; }
  // Low-rank options (targets, rank, ...); meaningless for full fine-tuning.
  const LowRankOptions& options() const { return options_; }

  // ---- Initialisation: apply_method calls make_shared_state once, then make_adapter slot by slot. ----
  // The state shared by every adapter of one model, made from all planned slots before any adapter (A drawn
  // from `generator`, tensors with `options`). Null (the default) when the method shares nothing.
  virtual SharedState make_shared_state(const std::vector<SlotPlan>& slots, const torch::TensorOptions& options,
                                        torch::Generator generator) const;
  // The adapter for one planned slot. `base_weight` is the slot's frozen weight W0; the adapter may rewrite it
  // in place (PiSSA stores the residual there) and then reconstructs W0 in Adapter::pretrained_weight.
  virtual std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                                torch::Generator generator, const SharedState& shared) const = 0;

  // ---- Size and cost. ----
  // Trainable parameters the adapter adds to an (out, in) weight at rank r (docs/methods.md's formulas).
  virtual int64_t adapter_parameter_count(int64_t in_features, int64_t out_features, int64_t rank) const = 0;
  // Floating-point operations the adapter adds to one training step (forward and backward) of one (out, in)
  // slot at rank r over `tokens` tokens, beyond the frozen matmul (`peftlab bench`).
  virtual double adapter_step_flops(int64_t in_features, int64_t out_features, int64_t rank, double tokens) const;

  // ---- HF PEFT's format (methods/peft_format.h). ----
  // The method whose adapter an export describes, as a mapping for make_method: this one (the default), or
  // its equivalent in PEFT's terms (PiSSA: a LoRA of twice the rank that applies to the pretrained W0).
  virtual nlohmann::json peft_equivalent() const { return to_json(); }
  // adapter_config.json's method fields: peft_type, r, lora_alpha, ... (the writer adds task_type,
  // target_modules, rank/alpha patterns and modules_to_save).
  virtual nlohmann::json peft_config_fields() const;
  // One slot's tensors under PEFT's key suffixes, as peft_equivalent()'s adapter holds them. The default: the
  // adapter's own parameters named as LoRA's are (lora_A.weight, lora_B.weight).
  virtual std::vector<PeftTensor> peft_tensors(Adapter& adapter) const;
  // Tensors saved once per model under "base_model." + suffix (VeRA's vera_A, vera_B); none by default.
  virtual std::vector<PeftTensor> peft_shared_tensors(const SharedState& shared) const { return {}; }

  // The options as a mapping that make_method reads back to an identical method (stored with exports).
  virtual nlohmann::json to_json() const;

  // Where the method was specified, for error messages.
  const std::string& source_file() const { return file_; }

 protected:
  // Reads the shared low-rank keys; `min_rank` is 0 for methods with a magnitude-only ablation.
  void read_low_rank(Options& options, int64_t min_rank);
  // Only label, rank, dropout and targets (for methods without LoRA's scaling and per-module overrides).
  void read_rank_dropout_targets(Options& options, int64_t min_rank);
  void read_common(Options& options);  // label
  // "<name>-r8[-rslora][-gaussian]": the name and the shared low-rank options that distinguish runs.
  std::string low_rank_label() const;
  LowRankOptions options_;
  std::string label_;
  std::string file_;
};

}  // namespace peftlab
