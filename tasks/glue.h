// The nine GLUE tasks are task files in tasks/ (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli .yaml),
// in the original TSV layouts (no CSV quoting), with the official metrics; docs/tasks.md lists them. This
// header keeps the GLUE submission layout for test-split predictions.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tasks/task.h"

namespace peftlab {

// The GLUE benchmark's file name for a task's test predictions ("SST-2.tsv", "MNLI-m.tsv", "MNLI-mm.tsv").
std::string glue_submission_file_name(const std::string& task, const std::string& split);

// Writes predictions in the GLUE submission layout: a header "index\tprediction", then one row per example
// with its id and the predicted label name (STS-B: the value with three decimals). `examples` are the
// split's examples (Task::load), `predictions` one per example in the same order.
void write_glue_submission(const std::filesystem::path& path, const Task& task, const std::vector<Example>& examples,
                           const std::vector<double>& predictions);

}  // namespace peftlab
