#include "experiments/run_checks.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "core/errors.h"
#include "core/model_io.h"
#include "core/runtime.h"
#include "core/suggest.h"
#include "methods/plan.h"
#include "methods/registry.h"
#include "tasks/task.h"

namespace peftlab {

namespace {

LlamaConfig config_of(const ModelSpec& model) {
  if (!model.init) return read_model_config(model.path);
  LlamaConfig c;
  c.dim = model.init->dim, c.n_layers = model.init->n_layers, c.n_heads = model.init->n_heads;
  c.n_kv_heads = model.init->n_kv_heads > 0 ? model.init->n_kv_heads : model.init->n_heads;
  c.hidden_dim = model.init->hidden_dim, c.vocab_size = model.init->vocab_size, c.max_seq_len = model.init->max_seq_len;
  c.validate("model.init");
  return c;
}

// The node a task's sequence length was written at (block_size for lm), else the entry itself.
YAML::Node length_node(const YAML::Node& task) {
  for (const char* key : {"block_size", "max_seq_len"})
    if (task[key]) return task[key];
  return task;
}

}  // namespace

void check_runs(const std::vector<RunSpec>& runs) {
  std::map<std::string, LlamaConfig> configs;  // by the model section, resolved
  std::set<std::string> checked;               // (model, method) and (model, task) pairs already checked
  for (const auto& run : runs) {
    const std::string model_key = YAML::Dump(to_node(run.model));
    if (!configs.count(model_key)) {
      compute_device(run.model.device, run.sources->primary() + ": model.device");
      configs[model_key] = config_of(run.model);
    }
    const LlamaConfig& config = configs.at(model_key);
    with_source_locations(*run.sources, [&] {
      if (checked.insert(model_key + "|method|" + run.method_label).second) {
        auto method = make_method(run.method, run.sources->primary());
        describe_plan(config, *method);  // throws on a rank too large or targets that match nothing
      }
      if (checked.insert(model_key + "|task|" + run.task_label).second) {
        Options options(run.task, run.sources->primary(), "task");
        auto task = make_task(options);
        if (task->max_seq_len() > config.max_seq_len)
          throw InputError(run.sources->primary(),
                           fmt::format("task.{}: {} positions exceed the model's context of {}",
                                       run.task["block_size"] ? "block_size" : "max_seq_len", task->max_seq_len(),
                                       config.max_seq_len),
                           Options::line_of(length_node(run.task)));
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
