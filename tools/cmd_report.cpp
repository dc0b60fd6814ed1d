// `peftlab report RUN_DIR... --out report.html`: one self-contained page with the table and the figures.
#include "analysis/python_driver.h"
#include "tools/cli.h"

namespace {

struct ReportOptions {
  std::vector<std::string> runs, metrics;
  std::string out, title, split, baseline;
  bool percent = false;
};

std::vector<std::string> report_arguments(const ReportOptions& o) {
  std::vector<std::string> args = {"report", "--out", o.out};
  if (!o.title.empty()) args.insert(args.end(), {"--title", o.title});
  for (const auto& m : o.metrics) args.insert(args.end(), {"--metric", m});
  if (!o.split.empty()) args.insert(args.end(), {"--split", o.split});
  if (o.percent) args.push_back("--percent");
  if (!o.baseline.empty()) args.insert(args.end(), {"--baseline", o.baseline});
  args.push_back("--");
  args.insert(args.end(), o.runs.begin(), o.runs.end());
  return args;
}

PEFTLAB_REGISTER_VERB("report", "Self-contained HTML report (table and figures) from run folders", [](CLI::App& cmd) {
  auto o = std::make_shared<ReportOptions>();
  cmd.add_option("runs", o->runs, "Run folders (searched for run.h5) or run files")->required();
  cmd.add_option("--out", o->out, "The HTML file to write")->required();
  cmd.add_option("--title", o->title, "Page title");
  cmd.add_option("--metric", o->metrics, "task=metric: headline metric of a task (repeatable)");
  cmd.add_option("--split", o->split, "Split of the final metrics (default: dev, validation, test)");
  cmd.add_flag("--percent", o->percent, "Show metrics x100 with 2 decimals");
  cmd.add_option("--baseline", o->baseline, "Method label for paired differences (as table --baseline)");
  return [o] { return peftlab::run_analysis(report_arguments(*o)); };
});

}  // namespace
