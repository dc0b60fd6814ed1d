// Training checkpoints: trainable weights (adapter, head, or all for full fine-tuning), optimizer state, the
// loop's counters, the data position and the RNG state, so that a resumed run continues bit for bit.
// Written atomically: a temporary file in the same folder, then rename.
//
// Every file written here carries the identity of the run it belongs to (run_identity: the SHA-256 of the
// run's resolved spec, as recorded in run.h5's `spec` attribute). Readers name the identity they expect and
// refuse a file of another run (a checkpoint left by an earlier run with other settings, the adapter of the
// run a `--force` replaced), so a run folder never mixes runs.
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

// The identity of a run: the SHA-256 (hex) of its resolved spec (RunSpec::resolved_yaml).
std::string run_identity(const std::string& resolved_spec);

// The parameters that train (requires_grad), by name.
std::map<std::string, torch::Tensor> trainable_parameters(torch::nn::Module& model);

void save_checkpoint(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const TrainingState& state, const std::string& identity);
// Restores everything save_checkpoint wrote. A damaged file, or one whose identity is not `identity`, is an
// InputError naming it (and nothing is restored).
TrainingState load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                              torch::optim::Optimizer& optimizer, const std::string& identity);

// Just the trainable weights (the final adapter and head, the best evaluation's weights).
void save_weights(const std::filesystem::path& file, torch::nn::Module& model, const std::string& identity);
// `identity` empty: any identity (an adapter whose run was checked by require_finished_run).
void load_weights(const std::filesystem::path& file, torch::nn::Module& model, const std::string& identity = "");

// The identity a file written here carries ("" for a file written before identities were recorded).
std::string file_identity(const std::filesystem::path& file);

// For `eval` and `export`: <run_dir>/run.h5 says the run completed, its recorded spec reads as YAML, and
// <run_dir>/adapter.pt belongs to that run. Anything else is an InputError naming the file at fault.
void require_finished_run(const std::filesystem::path& run_dir);

}  // namespace peftlab
