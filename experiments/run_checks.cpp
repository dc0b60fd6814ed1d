#include "experiments/run_checks.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "core/errors.h"
#include "core/model_io.h"
#include "core/runtime.h"
#include "core/suggest.h"
#include "experiments/run_model.h"
#include "methods/plan.h"
#include "methods/registry.h"
#include "tasks/task.h"

namespace peftlab {

namespace {

// The node a task's sequence length was written at (block_size for lm), else the entry itself.
YAML::Node length_node(const YAML::Node& task) {
  for (const char* key : {"block_size", "max_seq_len"})
    if (task[key]) return task[key];
  return task;
}

}  // namespace

void check_runs(const std::vector<RunSpec>& runs) {
  std::map<std::string, BackboneConfigPtr> configs;  // by the model section, resolved
  std::set<std::string> checked;               // (model, method) and (model, task) pairs already checked
  for (const auto& run : runs) {
    const std::string model_key = YAML::Dump(to_node(run.model));
    if (!configs.count(model_key)) {
      compute_device(run.model.device, run.sources->primary() + ": model.device");
      configs[model_key] = model_spec_config(run.model);
    }
    const BackboneConfig& config = *configs.at(model_key);
    with_source_locations(*run.sources, [&] {
      if (checked.insert(model_key + "|method|" + run.method_label).second) {
        auto method = make_method(run.method, run.sources->primary());
        describe_plan(config, *method);  // throws on a rank too large or targets that match nothing
      }
      if (checked.insert(model_key + "|task|" + run.task_label).second) {
        Options options(run.task, run.sources->primary(), "task");
        auto task = make_task(options);
        if (task->max_seq_len() > config.max_position_embeddings)
          throw InputError(run.sources->primary(),
                           fmt::format("task.{}: {} positions exceed the model's context of {}",
                                       run.task["block_size"] ? "block_size" : "max_seq_len", task->max_seq_len(),
                                       config.max_position_embeddings),
                           Options::line_of(length_node(run.task)));
        fit_task_to_backbone(*task, config, run.sources->primary());  // encoders: sentence tasks only
        task->check_files();
        for (const auto& split : run.eval.splits)
          if (!task->has_split(split))
            throw InputError(run.sources->primary(), fmt::format("eval.splits: task {}: {}", task->name(),
                                                                 unknown_name_message("split", split, task->splits())));
      }
    });
  }
}

}  // namespace peftlab
