// `peftlab table RUN_DIR... [--format md|latex|csv] [--baseline LABEL]`: the paper's results table (analysis/peftlab_analysis.py).
#include "analysis/python_driver.h"
#include "tools/cli.h"

namespace {

struct TableOptions {
  std::vector<std::string> runs, metrics;
  std::string format = "md", split, out, baseline;
  bool percent = false;
};

std::vector<std::string> table_arguments(const TableOptions& o) {
  std::vector<std::string> args = {"table", "--format", o.format};
  for (const auto& m : o.metrics) args.insert(args.end(), {"--metric", m});
  if (!o.split.empty()) args.insert(args.end(), {"--split", o.split});
  if (!o.out.empty()) args.insert(args.end(), {"--out", o.out});
  if (o.percent) args.push_back("--percent");
  if (!o.baseline.empty()) args.insert(args.end(), {"--baseline", o.baseline});
  args.push_back("--");
  args.insert(args.end(), o.runs.begin(), o.runs.end());
  return args;
}

PEFTLAB_REGISTER_VERB("table", "Results table (mean ± std over seeds) from run folders", [](CLI::App& cmd) {
  auto o = std::make_shared<TableOptions>();
  cmd.add_option("runs", o->runs, "Run folders (searched for run.h5) or run files")->required();
  cmd.add_option("--format", o->format, "md, latex (booktabs) or csv")->check(CLI::IsMember({"md", "latex", "csv"}));
  cmd.add_option("--metric", o->metrics, "task=metric: headline metric of a task (repeatable)");
  cmd.add_option("--split", o->split, "Split of the final metrics (default: dev, validation, test)");
  cmd.add_flag("--percent", o->percent, "Show metrics x100 with 2 decimals");
  cmd.add_option("--out", o->out, "Write the table to this file instead of stdout");
  cmd.add_option("--baseline", o->baseline,
                 "Method label to compare the others with: paired differences over seeds and examples, 95% intervals");
  return [o] { return peftlab::run_analysis(table_arguments(*o)); };
});

}  // namespace
