// `peftlab plot RUN_DIR... --kind dynamics|curves --out DIR`: figures (and their data as JSON) from run files.
#include "analysis/python_driver.h"
#include "tools/cli.h"

namespace {

struct PlotOptions {
  std::vector<std::string> runs, metrics;
  std::string kind, out, format = "png", split;
  bool include_incomplete = false;
};

std::vector<std::string> plot_arguments(const PlotOptions& o) {
  std::vector<std::string> args = {"plot", "--kind", o.kind, "--out", o.out, "--format", o.format};
  for (const auto& m : o.metrics) args.insert(args.end(), {"--metric", m});
  if (!o.split.empty()) args.insert(args.end(), {"--split", o.split});
  if (o.include_incomplete) args.push_back("--include-incomplete");
  args.push_back("--");
  args.insert(args.end(), o.runs.begin(), o.runs.end());
  return args;
}

PEFTLAB_REGISTER_VERB("plot", "Decomposition dynamics (dM vs dD) or training curves from run folders", [](CLI::App& cmd) {
  auto o = std::make_shared<PlotOptions>();
  cmd.add_option("runs", o->runs, "Run folders (searched for run.h5) or run files")->required();
  cmd.add_option("--kind", o->kind, "dynamics or curves")->required()->check(CLI::IsMember({"dynamics", "curves"}));
  cmd.add_option("--out", o->out, "Folder for the figures and their .json data")->required();
  cmd.add_option("--format", o->format, "png or svg")->check(CLI::IsMember({"png", "svg"}));
  cmd.add_option("--metric", o->metrics, "task=metric: evaluation metric of a task for curves (repeatable)");
  cmd.add_option("--split", o->split, "Evaluation split for curves (default: dev, validation, test)");
  cmd.add_flag("--include-incomplete", o->include_incomplete, "Also plot runs that did not complete");
  return [o] { return peftlab::run_analysis(plot_arguments(*o)); };
});

}  // namespace
