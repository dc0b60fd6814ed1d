// `peftlab validate SPEC [--set key=value ...] [--smoke] [--shard i/n] [--resolved]`: loads the spec strictly, expands
// it and lists its runs; any problem is one line `error: <file>:<line>: <what>` and exit status 2.
#include <fmt/format.h>

#include <iostream>

#include "experiments/run_checks.h"
#include "experiments/smoke_profile.h"
#include "experiments/sweep.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct ValidateArgs {
  std::string spec;
  std::vector<std::string> overrides;
  std::string shard;
  bool resolved = false;
  bool smoke = false;
};

int validate(const ValidateArgs& args) {
  std::vector<std::string> overrides = args.smoke ? smoke_overrides(args.spec) : std::vector<std::string>{};
  overrides.insert(overrides.end(), args.overrides.begin(), args.overrides.end());
  std::vector<RunSpec> runs = load_runs(args.spec, overrides);
  check_runs(runs);
  size_t total = runs.size();
  std::string scope;
  if (!args.shard.empty()) {
    Shard shard = parse_shard(args.shard);
    runs = select_shard(runs, shard.index, shard.count);
    scope = fmt::format(" (shard {}/{}: {} of {})", shard.index, shard.count, runs.size(), total);
  }
  std::cout << fmt::format("{}: {} run{}{}\n", args.spec, total, total == 1 ? "" : "s", scope);
  for (const auto& run : runs) {
    if (args.resolved)
      std::cout << "---\n" << run.resolved_yaml;
    else
      std::cout << "  " << run.id << "\n";
  }
  return 0;
}

std::function<int()> setup_validate(CLI::App& cmd) {
  auto args = std::make_shared<ValidateArgs>();
  cmd.add_option("spec", args->spec, "Experiment spec (YAML)")->required();
  cmd.add_option("--set", args->overrides, "Override a key: --set train.lr=1e-4 (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd.add_flag("--smoke", args->smoke, "The smoke profile: stories260K, two steps, one example (docs/spec.md)");
  cmd.add_option("--shard", args->shard, "Only list shard i of n (i/n)");
  cmd.add_flag("--resolved", args->resolved, "Print each run's fully resolved YAML instead of its id");
  return [args] { return validate(*args); };
}

PEFTLAB_REGISTER_VERB("validate", "Check an experiment spec and list its runs", setup_validate);

}  // namespace
}  // namespace peftlab::cli
