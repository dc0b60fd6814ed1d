// peftlab eval RUN_DIR [--split dev]: evaluates a finished run again, with merged weights, and prints its metrics.
#include <iostream>

#include <nlohmann/json.hpp>

#include "experiments/run_model.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct EvalArgs {
  std::string run_dir, split;
  int64_t batch_size = 32;
};

std::function<int()> setup_eval(CLI::App& cmd) {
  auto args = std::make_shared<EvalArgs>();
  cmd.add_option("run_dir", args->run_dir, "A finished run's folder")->required();
  cmd.add_option("--split", args->split, "Split to evaluate (default: the task's evaluation splits)");
  cmd.add_option("--batch-size", args->batch_size, "Evaluation batch size")->check(CLI::PositiveNumber);
  return [args] {
    RunModel run = load_finished_run(args->run_dir);
    std::vector<std::string> splits = args->split.empty() ? run.task->eval_splits() : std::vector<std::string>{args->split};
    nlohmann::json out = nlohmann::json::object();
    for (const auto& split : splits) {
      run.task->check_split(split);
      auto examples = tokenized_split(*run.task, split, *run.tokenizer);
      out[split] = evaluate_split(*run.model, *run.task, split, examples, args->batch_size, run.tokenizer->pad_or_eos_id());
    }
    std::cout << out.dump(2) << std::endl;
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("eval", "Evaluate a finished run again (merged weights)", setup_eval);

}  // namespace peftlab::cli
