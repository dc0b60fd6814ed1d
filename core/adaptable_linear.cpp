#include "core/adaptable_linear.h"

#include <stdexcept>

namespace peftlab {

AdaptableLinearImpl::AdaptableLinearImpl(std::string slot_name, int64_t in_features, int64_t out_features)
    : slot_name_(std::move(slot_name)) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  // PyTorch's nn.Linear default, so that randomly initialised backbones train like Python's.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
}

torch::Tensor AdaptableLinearImpl::forward(const torch::Tensor& x) {
  if (adapter_ && !merged_) return adapter_->forward(x, weight);
  return torch::nn::functional::linear(x, weight);
}

void AdaptableLinearImpl::attach(std::shared_ptr<Adapter> adapter) {
  if (adapter_) throw std::logic_error(slot_name_ + ": an adapter is already attached");
  adapter_ = register_module("adapter", std::move(adapter));
}

torch::Tensor AdaptableLinearImpl::effective_weight() {
  if (!adapter_ || merged_) return weight;
  return adapter_->merged_weight(weight);
}

void AdaptableLinearImpl::merge() {
  if (!adapter_ || merged_) return;
  torch::NoGradGuard no_grad;
  base_backup_ = weight.detach().clone();
  weight.copy_(adapter_->merged_weight(weight));
  merged_ = true;
}

void AdaptableLinearImpl::unmerge() {
  if (!merged_) return;
  torch::NoGradGuard no_grad;
  weight.copy_(base_backup_);
  base_backup_ = torch::Tensor();
  merged_ = false;
}

}  // namespace peftlab
