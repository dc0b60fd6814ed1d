// The nine GLUE tasks in their original TSV layouts (no CSV quoting), with the official metrics, and the
// GLUE submission layout for test-split predictions.
//
//   name   folder  splits (files)                                             labels (file text, index order)
//   cola   CoLA    train dev (no header: source label annotation sentence) test  0 1            matthews
//   sst2   SST-2   train dev (sentence label) test (index sentence)             0 1            accuracy
//   mrpc   MRPC    train dev (Quality #1 ID #2 ID #1 String #2 String) test     0 1            accuracy, f1
//   stsb   STS-B   train dev (... sentence1 sentence2 score) test               regression     pearson, spearman
//   qqp    QQP     train dev (id qid1 qid2 question1 question2 is_duplicate) test (id question1 question2)
//                                                                               0 1            accuracy, f1
//   mnli   MNLI    train dev_matched dev_mismatched test_matched test_mismatched (sentence1 sentence2 ...
//                  gold_label)                              entailment neutral contradiction   accuracy
//   qnli   QNLI    train dev (index question sentence label) test  entailment not_entailment   accuracy
//   rte    RTE     train dev (index sentence1 sentence2 label) test entailment not_entailment  accuracy
//   wnli   WNLI    train dev (index sentence1 sentence2 label) test 0 1                        accuracy
//
// Options beyond the common ones: data_dir (default: <data root>/glue/<folder>).
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
