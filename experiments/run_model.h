// What a run trains, built from its spec: tokenizer, task, method and the task model (backbone with the
// method's adapters and the task's head). The runner builds it to train; eval and export rebuild it from a
// finished run's folder (the resolved spec in run.h5, the trained weights in adapter.pt).
#pragma once

#include <filesystem>
#include <memory>

#include "core/backbone.h"
#include "core/tokenizer.h"
#include "experiments/sweep.h"
#include "experiments/task_model.h"
#include "methods/method.h"
#include "tasks/task.h"

namespace peftlab {

struct RunModel {
  std::shared_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Task> task;
  std::shared_ptr<Method> method;
  TaskModel model{nullptr};
};

// Derives independent seeds for the named random streams of a run ("init", "data", "dropout") from its seed.
uint64_t stream_seed(int64_t seed, const std::string& stream);

RunModel build_run_model(const RunSpec& run);

// The config of a spec's model: model.init as a llama-family config (tied output embedding, llama2.c's
// convention), else read from the model's path (config.json or the llama2.c header). No weights are read.
BackboneConfigPtr model_spec_config(const ModelSpec& model);

// The run recorded in <run_dir>/run.h5 (its resolved spec), rebuilt with its trained weights.
RunSpec read_run_spec(const std::filesystem::path& run_dir);
RunModel load_finished_run(const std::filesystem::path& run_dir);

}  // namespace peftlab
