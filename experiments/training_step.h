// One optimizer step, the same for every method and every caller (the runner, `peftlab bench`): the
// optimizer a run trains with, micro-batches under the spec's precision, data-parallel gradient sums,
// clipping, and the step itself.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "core/dataset.h"
#include "experiments/distributed.h"
#include "experiments/spec.h"
#include "experiments/task_model.h"

namespace peftlab {

// AdamW over the model's trainable parameters in two groups: weight decay, and none for the names matching
// train.no_decay (norms, biases, magnitude vectors).
std::unique_ptr<torch::optim::AdamW> make_optimizer(const torch::nn::Module& model, const TrainConfig& train);
std::vector<torch::Tensor> optimizer_parameters(const torch::optim::Optimizer& optimizer);

struct StepResult {
  double loss = 0;        // mean loss over the whole (global) batch
  double grad_norm = 0;   // before clipping
  int64_t tokens = 0;     // tokens the loss covered, all processes
  bool stepped = false;   // false when the loss or the gradient norm is not finite (nothing was updated)
};

// zero_grad; train.grad_accum micro-batches from `next_batch` (each process takes its slice of each) with the
// forward under train.precision; gradients summed across processes; clipped to train.grad_clip; then the
// optimizer step unless something is not finite. The caller sets the learning rate.
StepResult training_step(TaskModelImpl& model, torch::optim::Optimizer& optimizer,
                         const std::function<Batch()>& next_batch, const TrainConfig& train,
                         const DataParallel& dp);

}  // namespace peftlab
