// peftlab plan: what a method adapts on a model and how many parameters train. Reads only the model's config
// (config.json or the llama2.c header), so a laptop plans a LLaMA-7B run. Interim form until the spec parser
// lands: --model PATH --method '{name: lora, rank: 8, targets: [q_proj, v_proj]}'.
#include <iostream>

#include "core/model_io.h"
#include "methods/plan.h"
#include "methods/registry.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct PlanArgs {
  std::string model;
  std::string method = "{name: lora}";
};

std::function<int()> setup_plan(CLI::App& cmd) {
  auto args = std::make_shared<PlanArgs>();
  cmd.add_option("--model", args->model, "llama2.c checkpoint or Hugging Face folder (only its config is read)")
      ->required();
  cmd.add_option("--method", args->method, "The method mapping, inline YAML, e.g. '{name: dora, rank: 8}'");
  return [args] {
    auto config = read_model_config(args->model);
    auto method = make_method_from_yaml(args->method, "--method");
    std::cout << describe_plan(config, *method);
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("plan", "Show the adapted modules and trainable parameters of a method on a model", setup_plan);

}  // namespace peftlab::cli
