// A Linear layer, with or without a bias, whose frozen weight W0 a method plugin can adapt. The method
// attaches an Adapter, a small strategy object (HF PEFT's pattern) with an explicit contract: forward with the
// base weight, merged weight, and its own parameters as a submodule named "adapter".
//
// Adapters act on the weight path only: y = x W'^T + b, with the bias b unchanged. This is PEFT's semantics
// for every method: LoRA adds s B A x to the biased output; DoRA (and BoRA) rescale only W'x, since PEFT's
// DoraLinearLayer normalises the weight alone and the base layer's bias is added unscaled.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

namespace peftlab {

class Adapter : public torch::nn::Module {
 public:
  // y = x W'^T, computed without building W' where the method allows it. `base_weight` is W0 (out, in).
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base_weight) = 0;
  // The effective weight W' (out, in), for merging, statistics and tests.
  virtual torch::Tensor merged_weight(const torch::Tensor& base_weight) = 0;
  // The pretrained weight the slot held before the adapter was made. An adapter whose initialisation rewrote the
  // frozen weight (PiSSA keeps the residual there) reconstructs it; the decomposition statistics compare against it.
  virtual torch::Tensor pretrained_weight(const torch::Tensor& base_weight) { return base_weight; }
};

class AdaptableLinearImpl : public torch::nn::Module {
 public:
  AdaptableLinearImpl(std::string slot_name, int64_t in_features, int64_t out_features, bool bias = false);

  torch::Tensor forward(const torch::Tensor& x);

  // Attaches `adapter` (registered as submodule "adapter"). Only one adapter per slot.
  void attach(std::shared_ptr<Adapter> adapter);
  bool has_adapter() const { return adapter_ != nullptr; }
  std::shared_ptr<Adapter> adapter() const { return adapter_; }

  // The weight the layer computes with: W' when adapted, else W0.
  torch::Tensor effective_weight();
  // The pretrained weight, also when the adapter's initialisation rewrote `weight` (Adapter::pretrained_weight).
  torch::Tensor pretrained_weight();
  // Folds the adapter into the weight for fast inference; unmerge restores W0 exactly (a copy is kept). The
  // bias is left as it is.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }

  const std::string& slot_name() const { return slot_name_; }
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  bool has_bias() const { return bias.defined(); }

  torch::Tensor weight;  // W0 (out, in)
  torch::Tensor bias;    // (out), registered as "bias" only when the layer has one

 private:
  std::string slot_name_;
  std::shared_ptr<Adapter> adapter_;
  bool merged_ = false;
  torch::Tensor base_backup_;
};
TORCH_MODULE(AdaptableLinear);

}  // namespace peftlab
