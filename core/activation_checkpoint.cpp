#include "core/activation_checkpoint.h"

#include <ATen/core/ivalue.h>
#include <torch/csrc/autograd/custom_function.h>

#include <mutex>

#include "core/precision.h"

namespace peftlab {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the backward pass needs besides tensors: the block, and the state its forward ran in.
struct Recompute : torch::CustomClassHolder {
  Block block;
  AutocastState autocast;
  at::Tensor rng_state;
  at::Generator generator;
};

at::Generator default_generator(const torch::Tensor& x) { return at::globalContext().defaultGenerator(x.device()); }

at::Tensor generator_state(at::Generator& generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(at::Generator& generator, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, torch::TensorList parameters,
                               c10::intrusive_ptr<Recompute> recompute) {
    std::vector<torch::Tensor> saved{x};
    saved.insert(saved.end(), parameters.begin(), parameters.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    return recompute->block(x);  // autograd is off here (Function::apply)
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto holder = ctx->saved_data["recompute"].toCapsule();
    auto& recompute = static_cast<Recompute&>(*holder);

    // Replay the forward's random stream, then put the current one back.
    const at::Tensor rng_now = generator_state(recompute.generator);
    set_generator_state(recompute.generator, recompute.rng_state);
    variable_list grads;
    {
      torch::AutoGradMode grad_on(true);
      AutocastScope autocast(recompute.autocast);
      auto x = saved[0].detach().requires_grad_(saved[0].requires_grad());
      auto y = recompute.block(x);
      variable_list wrt;
      if (x.requires_grad()) wrt.push_back(x);
      wrt.insert(wrt.end(), saved.begin() + 1, saved.end());
      grads = torch::autograd::grad({y}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
      if (!x.requires_grad()) grads.insert(grads.begin(), torch::Tensor());
    }
    set_generator_state(recompute.generator, rng_now);
    grads.push_back(torch::Tensor());  // the Recompute argument
    return grads;
  }
};

}  // namespace

torch::Tensor checkpointed(Block block, const torch::Tensor& x, const std::vector<torch::Tensor>& parameters) {
  if (!torch::GradMode::is_enabled()) return block(x);
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->block = std::move(block);
  recompute->autocast = AutocastState::current();
  recompute->generator = default_generator(x);
  recompute->rng_state = generator_state(recompute->generator);
  return CheckpointFunction::apply(x, torch::TensorList(parameters), recompute);
}

}  // namespace peftlab
