#include "tasks/task.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "core/atomic_file.h"
#include "core/checksum.h"
#include "core/errors.h"
#include "core/suggest.h"
#include "core/text_tables.h"
#include "tasks/builtin.h"
#include "tasks/commonsense.h"
#include "tasks/task_file.h"

namespace peftlab {

std::string to_string(TaskKind kind) {
  switch (kind) {
    case TaskKind::Classification: return "classification";
    case TaskKind::Regression: return "regression";
    case TaskKind::Generation: return "generation";
    case TaskKind::CausalLM: return "causal_lm";
  }
  return "unknown";
}

bool Task::has_split(const std::string& split) const {
  for (const auto& s : splits())
    if (s == split) return true;
  return false;
}

void Task::check_split(const std::string& split) const {
  if (!has_split(split)) input_error("task " + name_, "{}", unknown_name_message("split", split, splits()));
}

LabelKind Task::label_kind() const {
  switch (kind()) {
    case TaskKind::Classification: return LabelKind::Class;
    case TaskKind::Regression: return LabelKind::Target;
    default: return LabelKind::Tokens;
  }
}

void Task::read_common_options(Options& options, int64_t default_max_seq_len) {
  max_seq_len_ = options.get<int64_t>("max_seq_len", default_max_seq_len);
  max_train_examples_ = options.get<int64_t>("max_train_examples", 0);
  max_eval_examples_ = options.get<int64_t>("max_eval_examples", 0);
  if (max_seq_len_ < 2)
    throw InputError(options.file(), fmt::format("{}.max_seq_len must be at least 2", options.path()), options.line());
  if (max_train_examples_ < 0 || max_eval_examples_ < 0)
    throw InputError(options.file(), fmt::format("{}: max_*_examples must be 0 (all) or positive", options.path()),
                     options.line());
}

std::vector<Example> Task::limit(const std::string& split, std::vector<Example> examples) const {
  int64_t cap = split == "train" ? max_train_examples_ : max_eval_examples_;
  if (cap > 0 && int64_t(examples.size()) > cap) examples.resize(size_t(cap));
  return examples;
}

std::string Task::common_format_options() const {
  return fmt::format("task={};version={};max_seq_len={};max_train_examples={};max_eval_examples={}", name_, version(),
                     max_seq_len_, max_train_examples_, max_eval_examples_);
}

std::map<std::string, double> Task::score(const std::string& split, const std::vector<TokenizedExample>& examples,
                                          const std::vector<double>& predictions) const {
  if (predictions.size() != examples.size())
    throw std::invalid_argument(fmt::format("{} {}: {} predictions for {} examples", name_, split, predictions.size(),
                                            examples.size()));
  std::vector<double> references;
  references.reserve(examples.size());
  for (const auto& e : examples) references.push_back(kind() == TaskKind::Regression ? e.target : double(e.class_label));
  std::map<std::string, double> out;
  for (const auto& metric : metrics(split))
    if (metric.aggregate) out[metric.name] = metric.aggregate(predictions, references);  // else the evaluator's
  return out;
}

std::vector<std::string> Task::prediction_splits() const {
  const auto labelled = eval_splits();
  std::vector<std::string> out;
  for (const auto& split : splits()) {
    if (split == "train" || std::find(labelled.begin(), labelled.end(), split) != labelled.end()) continue;
    const auto paths = files(split);
    if (!paths.empty() && std::all_of(paths.begin(), paths.end(), [](const auto& p) { return std::filesystem::exists(p); }))
      out.push_back(split);
  }
  return out;
}

std::filesystem::path Task::write_predictions(const std::filesystem::path& dir, const std::string& split,
                                             const std::vector<Example>& examples,
                                             const std::vector<double>& predictions) const {
  auto path = dir / (split + ".tsv");
  write_prediction_table(path, *this, examples, predictions);
  return path;
}

void write_prediction_table(const std::filesystem::path& path, const Task& task, const std::vector<Example>& examples,
                            const std::vector<double>& predictions) {
  if (examples.size() != predictions.size())
    throw std::invalid_argument(fmt::format("write_prediction_table: {} predictions for {} examples",
                                            predictions.size(), examples.size()));
  if (task.kind() != TaskKind::Classification && task.kind() != TaskKind::Regression)
    throw std::logic_error("write_prediction_table: task " + task.name() + " has no per-example labels to write");
  std::ostringstream out;
  out << "index\tprediction\n";
  const auto labels = task.label_names();
  for (size_t i = 0; i < examples.size(); ++i) {
    if (task.kind() == TaskKind::Regression) {
      out << examples[i].id << '\t' << fmt::format("{:.3f}", predictions[i]) << '\n';
      continue;
    }
    auto index = int64_t(predictions[i]);
    if (index < 0 || index >= int64_t(labels.size()) || double(index) != predictions[i])
      throw std::invalid_argument(fmt::format("write_prediction_table: prediction {} is not a class index", predictions[i]));
    out << examples[i].id << '\t' << labels[size_t(index)] << '\n';
  }
  AtomicFileWriter file(path);  // whole or absent
  file.write(out.str());
  file.commit();
}

namespace {
// A data file's SHA-256, once it is known to be a regular file (hashing a FIFO would block).
std::string checked_sha256(const std::filesystem::path& path) {
  require_regular_file(path);
  return sha256_file(path);
}
}  // namespace

void Task::check_files() const {
  for (const auto& split : splits())
    for (const auto& path : files(split))
      if (std::filesystem::exists(path) || std::filesystem::is_symlink(path)) require_regular_file(path);
}

TaskProvenance Task::provenance() const {
  TaskProvenance p{name_, version(), to_string(kind()), format_options(), {}, source(), source_sha256()};
  for (const auto& split : splits())
    for (const auto& path : files(split))  // a split whose file is absent (QNLI train here) is marked, not fatal
      p.files.push_back({split, path, std::filesystem::exists(path) ? checked_sha256(path) : std::string("missing")});
  return p;
}

// ---- registry ----------------------------------------------------------------------------------------------

namespace {

std::map<std::string, TaskFactory>& registry() {
  static std::map<std::string, TaskFactory> tasks = [] {
    std::map<std::string, TaskFactory> r;
    builtin::add_shipped_tasks(r);
    builtin::add_commonsense_tasks(r);
    builtin::add_lm_task(r);
    builtin::add_custom_task(r);
    return r;
  }();
  return tasks;
}

}  // namespace

bool register_task(const std::string& name, TaskFactory factory) {
  return registry().emplace(name, std::move(factory)).second;
}

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::string task_source(const std::string& name) {
  for (const auto& [file, text] : shipped_task_files())
    if (YAML::Load(text)["task"].Scalar() == name) return file;
  if (name == "lm") return "tasks/lm.cpp";
  if (name == "custom") return "tasks/custom.cpp";
  const auto& sets = commonsense_sets();
  if (name == "commonsense" || std::find(sets.begin(), sets.end(), name) != sets.end()) return "tasks/commonsense.cpp";
  return "";
}

std::string Task::source() const { return task_source(name_); }

std::unique_ptr<Task> make_task(Options& options) {
  if (options.has("file")) {
    YAML::Node file = options.raw("file");
    const std::string path = options.require<std::string>("file");
    auto declared = options.get_optional<std::string>("name");
    std::unique_ptr<Task> task = make_file_task(std::filesystem::path(path), options);
    if (declared && *declared != task->name())
      throw InputError(options.file(),
                       fmt::format("{}.name '{}' differs from the task file's `task: {}`", options.path(), *declared,
                                   task->name()),
                       Options::line_of(options.raw("name")));
    options.finish();
    return task;
  }
  auto name = options.require<std::string>("name");
  auto it = registry().find(name);
  if (it == registry().end()) {
    YAML::Node node = options.raw("name");
    throw InputError(options.file(), unknown_name_message("task", name, task_names()), Options::line_of(node));
  }
  std::unique_ptr<Task> task = it->second(options);
  options.finish();
  return task;
}

std::unique_ptr<Task> make_task_from_yaml(const std::string& yaml, const std::string& file) {
  YAML::Node node;
  try {
    node = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(file, "invalid YAML: " + e.msg, e.mark.line + 1);
  }
  Options options(node, file, "task");
  return make_task(options);
}

std::vector<TokenizedExample> tokenized_split(const Task& task, const std::string& split, const Tokenizer& tokenizer,
                                              const std::filesystem::path& cache_dir, bool* cache_hit) {
  task.check_split(split);
  CacheKey key;
  key.name = task.name() + "-" + split;
  key.tokenizer_checksum = tokenizer.checksum();
  for (const auto& path : task.files(split)) key.file_checksums.push_back(checked_sha256(path));
  key.options = task.format_options() + ";split=" + split;
  return load_or_tokenize(
      key, cache_dir, [&] { return task.tokenize(split, task.load(split), tokenizer); }, cache_hit);
}

std::vector<std::string> string_list_option(Options& options, const std::string& key,
                                            const std::vector<std::string>& fallback) {
  YAML::Node node = options.raw(key);
  if (!node || node.IsNull()) return fallback;
  if (node.IsScalar()) return {node.as<std::string>()};
  if (!node.IsSequence())
    throw InputError(options.file(), fmt::format("{}.{}: expected a list of strings", options.path(), key),
                     Options::line_of(node));
  std::vector<std::string> out;
  for (const auto& item : node) {
    if (!item.IsScalar())
      throw InputError(options.file(), fmt::format("{}.{}: expected a list of strings", options.path(), key),
                       Options::line_of(item));
    out.push_back(item.as<std::string>());
  }
  return out;
}

}  // namespace peftlab
