// Planning (from the model config alone, so a 7B model's config.json plans without weights) and applying a
// method to a backbone of any family: targets, per-module overrides, requires_grad, merge/unmerge, optimizer
// groups.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/backbone.h"
#include "methods/method.h"

namespace peftlab {

// The method's targets, or the family's default target modules when the method names none.
std::vector<std::string> resolved_targets(const BackboneConfig& config, const Method& method);

struct AdaptationPlan {
  std::string method_label;
  std::vector<SlotPlan> slots;    // adapted slots (empty for full fine-tuning)
  int64_t backbone_params = 0;    // the model's own parameters
  int64_t added_params = 0;       // adapter parameters added to the model
  int64_t trainable_params = 0;   // adapter parameters, or the whole backbone for full fine-tuning
  // HF PEFT's print_trainable_parameters convention: trainable / (backbone + added adapter parameters).
  double trainable_share() const;
};

// Resolves targets and overrides against the config. InputError (method's file, line) when a target or an
// override matches no slot, a short name is unknown, or a rank exceeds min(in, out) of a slot.
AdaptationPlan plan_adaptation(const BackboneConfig& config, const Method& method);

// Attaches the adapters (A drawn from `generator`, slot by slot in order) and sets requires_grad: the
// backbone is frozen unless the method trains it. Returns the plan it applied.
AdaptationPlan apply_method(BackboneImpl& model, const Method& method, torch::Generator generator);
AdaptationPlan apply_method(BackboneImpl& model, const Method& method, uint64_t seed);

// Merges every adapted slot into its weight (fast inference), and back.
void merge_all(BackboneImpl& model);
void unmerge_all(BackboneImpl& model);

// Trainable parameters of the model for the optimizer. Magnitude vectors (DoRA m, BoRA m_out/m_in) are kept
// apart so weight decay can exclude them; so are the backbone's norm weights and 1-D parameters.
struct ParameterGroups {
  std::vector<torch::Tensor> decay;     // lora_A, lora_B; backbone matrices for full fine-tuning
  std::vector<torch::Tensor> no_decay;  // magnitude vectors; 1-D backbone parameters (norm weights)
  std::vector<std::string> decay_names, no_decay_names;
};
// Splits the trainable parameters for AdamW: a name matching any of `no_decay` (regex search; the spec's
// train.no_decay) gets no weight decay. The default keeps norms, biases and magnitude vectors out.
ParameterGroups trainable_parameter_groups(const torch::nn::Module& model,
                                           const std::vector<std::string>& no_decay = {"norm", "bias", "magnitude"});

// True for adapter magnitude vectors by their parameter name ("...adapter.magnitude", "...magnitude_in").
bool is_magnitude_parameter(const std::string& name);

}  // namespace peftlab
