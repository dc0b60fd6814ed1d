// peftlab eval RUN_DIR [--split S]: evaluates a finished run again, with merged weights, and prints its metrics.
// peftlab eval --adapter DIR --task YAML --model M: evaluates an exported adapter (PEFT layout) on a task.
#include <iostream>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/suggest.h"
#include "experiments/checkpoint.h"
#include "experiments/evaluation.h"
#include "experiments/run_model.h"
#include "methods/peft_format.h"
#include "tools/cli.h"
#include "tools/model_loading.h"

namespace peftlab::cli {
namespace {

struct EvalArgs {
  std::string run_dir, adapter, task, split;
  ModelArgs model;
  int64_t batch_size = 32, max_examples = 0;
};

// An exported adapter attached to its base model, with the task's head when the adapter saved one.
RunModel adapter_run(const EvalArgs& args) {
  if (args.task.empty() || args.model.model.empty())
    throw InputError(args.adapter, "--adapter needs --task (a task entry, e.g. '{name: sst2}') and --model");
  RunModel run;
  LoadedModel loaded = load_model_for_cli(args.model);
  run.tokenizer = loaded.tokenizer;
  run.task = make_task_from_yaml(args.task, "--task");
  fit_task_to_backbone(*run.task, loaded.model->config(), "--task");
  PeftAdapter adapter = load_peft_adapter(*loaded.model, args.adapter);
  run.method = std::move(adapter.method);
  run.model = TaskModel(loaded.model, run.task->kind(), run.task->num_labels());
  if (run.model->has_score_head()) {
    if (adapter.modules_to_save.empty())
      throw InputError(args.adapter, "the adapter has no task head (modules_to_save), which task " + run.task->name() + " needs");
    run.model->load_head_hf_tensors(adapter.modules_to_save, args.adapter);
  }
  run.model->eval();
  return run;
}

std::function<int()> setup_eval(CLI::App& cmd) {
  auto args = std::make_shared<EvalArgs>();
  cmd.add_option("run_dir", args->run_dir, "A finished run's folder");
  cmd.add_option("--adapter", args->adapter, "An exported adapter folder (peftlab export) instead of a run");
  cmd.add_option("--task", args->task, "With --adapter: the task entry as YAML, e.g. '{name: sst2}'");
  cmd.add_option("--model,-m", args->model.model, "With --adapter: the base model");
  cmd.add_option("--tokenizer,-t", args->model.tokenizer, "With --adapter: SentencePiece .model (default: beside the model)");
  cmd.add_option("--split", args->split, "Split to evaluate (default: the task's evaluation splits)");
  cmd.add_option("--batch-size", args->batch_size, "Evaluation batch size")->check(CLI::PositiveNumber);
  cmd.add_option("--max-examples", args->max_examples, "Evaluate the first N examples of each split (0: all)")
      ->check(CLI::NonNegativeNumber);
  return [args] {
    if (args->run_dir.empty() == args->adapter.empty())
      throw InputError("peftlab eval", "name either a run folder or --adapter DIR");
    if (args->adapter.empty()) require_finished_run(args->run_dir);  // completed, and adapter.pt is its own
    RunModel run = args->adapter.empty() ? load_finished_run(args->run_dir) : adapter_run(*args);
    std::vector<std::string> names = args->split.empty() ? run.task->eval_splits() : std::vector<std::string>{args->split};
    if (!args->split.empty() && !run.task->has_split(args->split))
      throw InputError("--split", unknown_name_message("split", args->split, run.task->splits()));
    std::vector<EvalSplit> splits;
    for (const auto& split : names) splits.push_back(load_eval_split(*run.task, split, *run.tokenizer, args->max_examples));
    nlohmann::json out = evaluate_splits(*run.model, *run.task, splits, *run.tokenizer, args->batch_size);
    std::cout << out.dump(2) << std::endl;
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("eval", "Evaluate a finished run or an exported adapter (merged weights)", setup_eval);

}  // namespace peftlab::cli
