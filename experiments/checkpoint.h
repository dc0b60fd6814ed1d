// Training checkpoints: trainable weights (adapter, head, or all for full fine-tuning), optimizer state, the
// loop's counters, the data position and the RNG state, so that a resumed run continues bit for bit.
// Written atomically: a temporary file in the same folder, then rename.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "core/dataset.h"

namespace peftlab {

struct TrainingState {
  int64_t step = 0;                 // optimizer steps done
  DataPosition data;                // next example of the training stream
  double best_metric = 0.0;         // best headline value so far (select_best / early stopping)
  int64_t best_step = -1;           // -1: no evaluation yet
  int64_t evals_without_improvement = 0;
};

// The parameters that train (requires_grad), by name.
std::map<std::string, torch::Tensor> trainable_parameters(torch::nn::Module& model);

void save_checkpoint(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const TrainingState& state);
// Restores everything save_checkpoint wrote; a damaged file is an InputError naming it.
TrainingState load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                              torch::optim::Optimizer& optimizer);

// Just the trainable weights (the final adapter and head, the best evaluation's weights).
void save_weights(const std::filesystem::path& file, torch::nn::Module& model);
void load_weights(const std::filesystem::path& file, torch::nn::Module& model);

}  // namespace peftlab
