#include "core/adaptable_linear.h"

#include <cmath>
#include <stdexcept>

namespace peftlab {

AdaptableLinearImpl::AdaptableLinearImpl(std::string slot_name, int64_t in_features, int64_t out_features, bool bias)
    : slot_name_(std::move(slot_name)) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  // PyTorch's nn.Linear default, so that randomly initialised backbones train like Python's.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias) {
    this->bias = register_parameter("bias", torch::empty({out_features}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    torch::NoGradGuard no_grad;
    this->bias.uniform_(-bound, bound);
  }
}

torch::Tensor AdaptableLinearImpl::forward(const torch::Tensor& x) {
  if (adapter_ && !merged_) {
    auto y = adapter_->forward(x, weight);
    return bias.defined() ? y + bias : y;
  }
  return torch::nn::functional::linear(x, weight, bias);
}

void AdaptableLinearImpl::attach(std::shared_ptr<Adapter> adapter) {
  if (adapter_) throw std::logic_error(slot_name_ + ": an adapter is already attached");
  adapter_ = register_module("adapter", std::move(adapter));
}

torch::Tensor AdaptableLinearImpl::effective_weight() {
  if (!adapter_ || merged_) return weight;
  return adapter_->merged_weight(weight);
}

torch::Tensor AdaptableLinearImpl::pretrained_weight() {
  if (!adapter_) return weight;
  return adapter_->pretrained_weight(merged_ ? base_backup_ : weight);
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
