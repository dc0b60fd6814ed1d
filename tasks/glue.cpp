#include "tasks/glue.h"

#include <fmt/format.h>

#include <fstream>

#include "core/data_root.h"
#include "core/errors.h"
#include "core/text_tables.h"
#include "tasks/builtin.h"
#include "tasks/classification.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

// How one split's file is laid out.
struct GlueSplit {
  std::string split;
  std::string file;
  std::vector<std::string> columns;  // names given to the columns of a header-less file; empty: the file has a header
  std::vector<std::string> text_columns;
  std::string label_column;          // empty: unlabelled (test)
  std::string id_column;             // empty: row number
};

struct GlueSpec {
  std::string name, folder, submission_name;
  std::vector<std::string> labels;   // empty: regression
  std::vector<std::string> metrics;
  std::string headline;
  std::vector<GlueSplit> splits;
  std::vector<std::string> eval_splits;
};

std::vector<GlueSplit> standard_splits(std::vector<std::string> text, const std::string& label,
                                       const std::string& id = "index", const std::string& train_id = "index") {
  return {{"train", "train.tsv", {}, text, label, train_id},
          {"dev", "dev.tsv", {}, text, label, train_id},
          {"test", "test.tsv", {}, text, "", id}};
}

const std::vector<GlueSpec>& glue_specs() {
  static const std::vector<GlueSpec> specs = [] {
    std::vector<GlueSpec> s;
    const std::vector<std::string> cola_columns = {"source", "label", "original_label", "sentence"};
    s.push_back({"cola", "CoLA", "CoLA", {"0", "1"}, {"matthews"}, "matthews",
                 {{"train", "train.tsv", cola_columns, {"sentence"}, "label", ""},
                  {"dev", "dev.tsv", cola_columns, {"sentence"}, "label", ""},
                  {"test", "test.tsv", {}, {"sentence"}, "", "index"}},
                 {"dev"}});
    s.push_back({"sst2", "SST-2", "SST-2", {"0", "1"}, {"accuracy"}, "accuracy",
                 {{"train", "train.tsv", {}, {"sentence"}, "label", ""},
                  {"dev", "dev.tsv", {}, {"sentence"}, "label", ""},
                  {"test", "test.tsv", {}, {"sentence"}, "", "index"}},
                 {"dev"}});
    s.push_back({"mrpc", "MRPC", "MRPC", {"0", "1"}, {"accuracy", "f1"}, "accuracy",
                 {{"train", "train.tsv", {}, {"#1 String", "#2 String"}, "Quality", ""},
                  {"dev", "dev.tsv", {}, {"#1 String", "#2 String"}, "Quality", ""},
                  {"test", "test.tsv", {}, {"#1 String", "#2 String"}, "", "index"}},
                 {"dev"}});
    s.push_back({"stsb", "STS-B", "STS-B", {}, {"pearson", "spearman"}, "pearson",
                 standard_splits({"sentence1", "sentence2"}, "score"), {"dev"}});
    s.push_back({"qqp", "QQP", "QQP", {"0", "1"}, {"accuracy", "f1"}, "accuracy",
                 standard_splits({"question1", "question2"}, "is_duplicate", "id", "id"), {"dev"}});
    const std::vector<std::string> pair = {"sentence1", "sentence2"};
    s.push_back({"mnli", "MNLI", "MNLI", {"entailment", "neutral", "contradiction"}, {"accuracy"}, "accuracy",
                 {{"train", "train.tsv", {}, pair, "gold_label", "index"},
                  {"dev_matched", "dev_matched.tsv", {}, pair, "gold_label", "index"},
                  {"dev_mismatched", "dev_mismatched.tsv", {}, pair, "gold_label", "index"},
                  {"test_matched", "test_matched.tsv", {}, pair, "", "index"},
                  {"test_mismatched", "test_mismatched.tsv", {}, pair, "", "index"}},
                 {"dev_matched", "dev_mismatched"}});
    s.push_back({"qnli", "QNLI", "QNLI", {"entailment", "not_entailment"}, {"accuracy"}, "accuracy",
                 standard_splits({"question", "sentence"}, "label"), {"dev"}});
    s.push_back({"rte", "RTE", "RTE", {"entailment", "not_entailment"}, {"accuracy"}, "accuracy",
                 standard_splits(pair, "label"), {"dev"}});
    s.push_back({"wnli", "WNLI", "WNLI", {"0", "1"}, {"accuracy"}, "accuracy", standard_splits(pair, "label"), {"dev"}});
    return s;
  }();
  return specs;
}

const GlueSpec* find_spec(const std::string& name) {
  for (const auto& spec : glue_specs())
    if (spec.name == name) return &spec;
  return nullptr;
}

class GlueTask : public SentenceTask {
 public:
  GlueTask(const GlueSpec& spec, Options& options) : spec_(spec) {
    name_ = spec.name;
    read_common_options(options, 128);
    auto dir = options.get_optional<std::string>("data_dir");
    data_dir_ = dir ? fs::path(*dir) : data_path("glue/" + spec.folder);
    regression_ = spec.labels.empty();
    labels_ = spec.labels;
    for (const auto& m : spec.metrics) metrics_.push_back(metric_by_name(m));
    headline_ = spec.headline;
  }

  int version() const override { return 1; }
  std::vector<std::string> splits() const override {
    std::vector<std::string> out;
    for (const auto& s : spec_.splits) out.push_back(s.split);
    return out;
  }
  std::vector<std::string> eval_splits() const override { return spec_.eval_splits; }
  std::vector<fs::path> files(const std::string& split) const override { return {data_dir_ / layout(split).file}; }
  // GLUE's test labels are private: predictions go to the benchmark's server under its file names.
  fs::path write_predictions(const fs::path& dir, const std::string& split, const std::vector<Example>& examples,
                             const std::vector<double>& predictions) const override {
    fs::path path = dir / glue_submission_file_name(name_, split);
    write_glue_submission(path, *this, examples, predictions);
    return path;
  }
  std::string format_options() const override { return sentence_format_options(); }

  std::vector<Example> load(const std::string& split) const override {
    const GlueSplit& l = layout(split);
    fs::path path = data_dir_ / l.file;
    bool has_header = l.columns.empty();
    TextTable table = read_tsv(path, has_header, has_header ? 0 : l.columns.size());
    if (!has_header) table.header = l.columns;
    std::vector<size_t> text_columns;
    for (const auto& c : l.text_columns) text_columns.push_back(table.column(c));
    long label = l.label_column.empty() ? -1 : long(table.column(l.label_column));
    long id = l.id_column.empty() ? -1 : long(table.column(l.id_column));
    return limit(split, examples_from_table(table, text_columns, label, id));
  }

 private:
  const GlueSplit& layout(const std::string& split) const {
    check_split(split);
    for (const auto& s : spec_.splits)
      if (s.split == split) return s;
    throw std::logic_error("unreachable");
  }

  const GlueSpec& spec_;
  fs::path data_dir_;
};

}  // namespace

std::string glue_submission_file_name(const std::string& task, const std::string& split) {
  const GlueSpec* spec = find_spec(task);
  if (spec == nullptr) input_error("task " + task, "not a GLUE task");
  if (task == "mnli") return split == "test_mismatched" ? "MNLI-mm.tsv" : "MNLI-m.tsv";
  return spec->submission_name + ".tsv";
}

void write_glue_submission(const fs::path& path, const Task& task, const std::vector<Example>& examples,
                           const std::vector<double>& predictions) {
  write_prediction_table(path, task, examples, predictions);  // GLUE's layout is the generic one
}

void builtin::add_glue_tasks(std::map<std::string, TaskFactory>& registry) {
  for (const auto& spec : glue_specs()) {
    const GlueSpec* s = &spec;
    registry[spec.name] = [s](Options& options) { return std::make_unique<GlueTask>(*s, options); };
  }
}

}  // namespace peftlab
