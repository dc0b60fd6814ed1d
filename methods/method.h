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

class Method {
 public:
  virtual ~Method() = default;

  // The registry name ("lora").
  virtual std::string name() const = 0;
  // Display label for run ids and tables: the spec's `label`, else e.g. "lora-r8", "bora-r8-in_first", "full".
  std::string label() const { return label_.empty() ? default_label() : label_; }
  // True for full fine-tuning: no adapters, every backbone weight trains.
  virtual bool trains_base_weights() const { return false; }
  // Low-rank options (targets, rank, ...); meaningless for full fine-tuning.
  const LowRankOptions& options() const { return options_; }

  // The adapter for one planned slot; A drawn from `generator`.
  virtual std::shared_ptr<Adapter> make_adapter(const SlotPlan& plan, const torch::Tensor& base_weight,
                                                torch::Generator generator) const = 0;
  // Trainable parameters the adapter adds to an (out, in) weight at rank r (docs/methods.md's formulas).
  virtual int64_t adapter_parameter_count(int64_t in_features, int64_t out_features, int64_t rank) const = 0;
  // The options as a mapping that make_method reads back to an identical method (stored with exports).
  virtual nlohmann::json to_json() const;

  // Where the method was specified, for error messages.
  const std::string& source_file() const { return file_; }

 protected:
  virtual std::string default_label() const = 0;
  // Reads the shared low-rank keys; `min_rank` is 0 for methods with a magnitude-only ablation.
  void read_low_rank(Options& options, int64_t min_rank);
  void read_common(Options& options);  // label
  LowRankOptions options_;
  std::string label_;
  std::string file_;
};

}  // namespace peftlab
