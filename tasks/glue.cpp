// The GLUE tasks themselves are task files (tasks/cola.yaml ... tasks/wnli.yaml); this file keeps the
// benchmark's submission layout and file names.
#include "tasks/glue.h"

#include <map>

#include "core/errors.h"

namespace peftlab {

namespace fs = std::filesystem;

std::string glue_submission_file_name(const std::string& task, const std::string& split) {
  static const std::map<std::string, std::string> names = {
      {"cola", "CoLA"}, {"sst2", "SST-2"}, {"mrpc", "MRPC"}, {"stsb", "STS-B"}, {"qqp", "QQP"},
      {"mnli", "MNLI"}, {"qnli", "QNLI"},  {"rte", "RTE"},   {"wnli", "WNLI"}};
  auto it = names.find(task);
  if (it == names.end()) input_error("task " + task, "not a GLUE task");
  if (task == "mnli") return split == "test_mismatched" ? "MNLI-mm.tsv" : "MNLI-m.tsv";
  return it->second + ".tsv";
}

void write_glue_submission(const fs::path& path, const Task& task, const std::vector<Example>& examples,
                           const std::vector<double>& predictions) {
  write_prediction_table(path, task, examples, predictions);  // GLUE's layout is the generic one
}

}  // namespace peftlab
