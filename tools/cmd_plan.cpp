// peftlab plan SPEC: for each run of a spec, what its method adapts and how many parameters train. Reads only
// the model's config (config.json or the llama2.c header), so a laptop plans a 7B run from a folder holding only config.json. Without a spec,
// --model PATH --method '{name: lora, rank: 8}' plans one method on one model.
#include <iostream>
#include <set>

#include "core/errors.h"
#include "core/model_io.h"
#include "experiments/run_model.h"
#include "experiments/run_checks.h"
#include "experiments/sweep.h"
#include "methods/plan.h"
#include "methods/registry.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct PlanArgs {
  std::string spec;
  std::vector<std::string> overrides;
  std::string model;
  std::string method = "{name: lora}";
};

int plan_spec(const PlanArgs& args) {
  auto runs = load_runs(args.spec, args.overrides);
  check_runs(runs);  // the device, sequence lengths against the context, every method's plan
  std::set<std::string> shown;  // one plan per (model, method): seeds and tasks share it
  for (const auto& run : runs) {
    const std::string key = run.model.path + "|" + run.method_label;
    if (!shown.insert(key).second) continue;
    std::unique_ptr<Method> method;
    with_source_locations(*run.sources, [&] { method = make_method(run.method, run.sources->primary()); });
    std::cout << "== " << run.method_label << " on " << (run.model.init ? "model.init" : run.model.path) << "\n";
    std::cout << describe_plan(*model_spec_config(run.model), *method) << "\n";
  }
  std::cout << runs.size() << " run(s)\n";
  return 0;
}

std::function<int()> setup_plan(CLI::App& cmd) {
  auto args = std::make_shared<PlanArgs>();
  cmd.add_option("spec", args->spec, "Experiment spec (YAML)");
  cmd.add_option("--set", args->overrides, "Override a spec key: a.b=value (repeatable)");
  cmd.add_option("--model", args->model, "Without a spec: a llama2.c checkpoint or Hugging Face folder");
  cmd.add_option("--method", args->method, "Without a spec: the method mapping, e.g. '{name: dora, rank: 8}'");
  return [args] {
    if (!args->spec.empty()) return plan_spec(*args);
    if (args->model.empty()) throw InputError("plan", "give a spec, or --model and --method");
    auto method = make_method_from_yaml(args->method, "--method");
    std::cout << describe_plan(*read_model_config(args->model), *method);
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("plan", "Show the adapted modules and trainable parameters of each run of a spec", setup_plan);

}  // namespace peftlab::cli
