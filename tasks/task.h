// Tasks turn data files into examples, tokenised examples and scores, lm-evaluation-harness style: a task has
// a name, a version (recorded in provenance: bump it whenever examples, prompts or metrics change), a kind,
// splits, data files (with SHA-256 for provenance and the token cache), metrics and a headline metric.
//
// A task is made from the spec's task entry, a YAML mapping read strictly:
//   task: {name: sst2, max_seq_len: 64, max_train_examples: 2000, max_eval_examples: 500}
// Options every task takes: name, max_seq_len, max_train_examples, max_eval_examples (0: all; the first N
// rows in file order). Per-task options: docs/tasks.md.
//
// What the training/eval loop does with a task:
//   auto examples = tokenized_split(task, "train", tokenizer);          // cached on disk
//   BatcherOptions o; o.batch_size = 16; o.seed = seed; o.pad_id = tokenizer.pad_or_eos_id();
//   o.label_kind = task.label_kind();
//   Batcher batches(examples, o);   // examples must outlive the batcher
//   ... for each eval split: predictions (one double per example, see Task::score), then
//   task.score(split, examples, predictions) -> {"accuracy": ..., ...}
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/options.h"
#include "core/tokenizer.h"
#include "tasks/metrics.h"

namespace peftlab {

enum class TaskKind {
  Classification,  // sequence classification: score head on the last real token, cross-entropy
  Regression,      // the same head with one output, mean-squared error (STS-B)
  Generation,      // instruction -> answer text (commonsense): causal LM loss, answers generated or scored
  CausalLM,        // plain-text corpus: causal LM loss on token blocks
};
std::string to_string(TaskKind kind);

// One example as read from the data files, before tokenisation.
struct Example {
  std::vector<std::string> texts;  // classification/regression: the sentence(s); causal LM: the split's text
  int64_t label = -1;              // class index (classification; commonsense: gold answer's index); -1: none
  double target = std::numeric_limits<double>::quiet_NaN();  // regression target
  std::string id;                  // the row's id for submissions (GLUE "index"/"id" column, else row number)
  long line = 0;                   // where it starts in its file
  // Generation (commonsense), the LLM-Adapters record.
  std::string instruction, input, output, answer;
  std::string set;                 // commonsense set it comes from ("boolq", ...)
};

struct DataFile {
  std::string split;
  std::filesystem::path path;
  std::string sha256;
};

// What a run records about its task.
struct TaskProvenance {
  std::string name;
  int version = 0;
  std::string kind;
  std::string options;           // the task's formatting options, as hashed into the cache key
  std::vector<DataFile> files;   // every data file of every split, with its SHA-256
  std::string source;            // the task file that defines it ("tasks/sst2.yaml"), or its C++ source
  std::string source_sha256;     // SHA-256 of the task file's text; empty for a C++ task
};

class Task {
 public:
  virtual ~Task() = default;

  const std::string& name() const { return name_; }
  virtual int version() const = 0;
  virtual TaskKind kind() const = 0;
  // Class names, in class-index order (classification); empty otherwise.
  virtual std::vector<std::string> label_names() const { return {}; }
  int64_t num_labels() const { return int64_t(label_names().size()); }

  // All splits, "train" first; eval_splits() are the labelled ones scored after training; test splits
  // (unlabelled) are in splits() but not in eval_splits().
  virtual std::vector<std::string> splits() const = 0;
  virtual std::vector<std::string> eval_splits() const = 0;
  bool has_split(const std::string& split) const;
  // InputError with a did-you-mean when the task has no such split.
  void check_split(const std::string& split) const;

  // The data files a split is read from (paths only; checksums in provenance()).
  virtual std::vector<std::filesystem::path> files(const std::string& split) const = 0;
  // The split's examples (max_train_examples / max_eval_examples applied).
  virtual std::vector<Example> load(const std::string& split) const = 0;
  virtual std::vector<TokenizedExample> tokenize(const std::string& split, const std::vector<Example>& examples,
                                                 const Tokenizer& tokenizer) const = 0;
  // The task's formatting options and version, for the cache key and provenance.
  virtual std::string format_options() const = 0;
  // What `validate` can check of the data without reading it whole: by default that every split's file that
  // exists is a regular file; tasks whose files name their columns in a header check those names too.
  virtual void check_files() const;

  // What the batcher puts in Batch::labels for this task.
  LabelKind label_kind() const;
  int64_t max_seq_len() const { return max_seq_len_; }

  virtual std::vector<Metric> metrics(const std::string& split) const = 0;
  // The metric a results table leads with, read on headline_split().
  virtual std::string headline_metric() const = 0;
  virtual std::string headline_split() const { return eval_splits().at(0); }

  // Scores one split. `predictions` holds one value per tokenised example, in order:
  //   Classification: predicted class index.   Regression: predicted value.
  //   Generation: index of the predicted answer among the set's answer names (CommonsenseTask::
  //     answer_index), -1 when the reply holds no answer (counted wrong; no_match_rate records how often).
  //   CausalLM: summed negative log-likelihood (nats) of the tokens the block predicts.
  // References come from the tokenised examples (class_label, target, labels, byte_count).
  virtual std::map<std::string, double> score(const std::string& split, const std::vector<TokenizedExample>& examples,
                                              const std::vector<double>& predictions) const;
  // Summary over the eval splits (e.g. commonsense's mean accuracy over its sets), recorded as the split
  // summary_split(); by default none.
  virtual std::map<std::string, double> summarize(
      const std::map<std::string, std::map<std::string, double>>& by_split) const {
    return {};
  }
  static constexpr const char* summary_split() { return "average"; }

  // Unlabelled splits whose predictions a finished run writes out: by default the splits other than train
  // and eval_splits() whose files are all present (GLUE's and custom tasks' test splits).
  virtual std::vector<std::string> prediction_splits() const;
  // Writes a split's predictions (`examples` and `predictions` as for score, in split order) into folder
  // `dir`; returns the file. By default <split>.tsv by write_prediction_table (GLUE: its submission names).
  virtual std::filesystem::path write_predictions(const std::filesystem::path& dir, const std::string& split,
                                                  const std::vector<Example>& examples,
                                                  const std::vector<double>& predictions) const;

  // Name, version, kind, options, and every data file of every split with its SHA-256.
  TaskProvenance provenance() const;
  // The file the task is defined in and the SHA-256 of its text (task files); a C++ task names its source
  // file and has no checksum.
  virtual std::string source() const;
  virtual std::string source_sha256() const { return ""; }

 protected:
  // Reads the options every task shares (the caller has read "name").
  void read_common_options(Options& options, int64_t default_max_seq_len);
  // The first max_train_examples / max_eval_examples of `examples`, by split.
  std::vector<Example> limit(const std::string& split, std::vector<Example> examples) const;
  std::string common_format_options() const;

  std::string name_;
  int64_t max_seq_len_ = 128;
  int64_t max_train_examples_ = 0;
  int64_t max_eval_examples_ = 0;
};

// Predictions in the GLUE submission layout: a header "index\tprediction", then one row per example with its
// id and the predicted label name (regression: the value with three decimals). Written to a temporary name
// and renamed: the file is whole or absent.
void write_prediction_table(const std::filesystem::path& path, const Task& task, const std::vector<Example>& examples,
                            const std::vector<double>& predictions);

// ---- tasks answered in text ---------------------------------------------------------------------------------

// How a Generation task's eval examples are answered: generate a reply and extract the answer from it, or
// score each candidate answer's log-likelihood and take the best, or both (both recorded).
enum class EvalProtocol { Generate, LogLikelihood, Both };

// A candidate answer for the log-likelihood protocol: score tokens continuation_start.. of input_ids.
struct CandidateSequence {
  std::vector<int32_t> input_ids;
  int64_t continuation_start = 0;
  int64_t answer_index = 0;  // the prediction value this candidate stands for (see Task::score)
  int64_t continuation_chars = 0;  // characters (code points) of the answer text, for length-normalised picks
};

// What the evaluator needs from a Generation task (implemented by CommonsenseTask next to Task).
class TextAnswerTask {
 public:
  virtual ~TextAnswerTask() = default;
  virtual EvalProtocol protocol() const = 0;
  virtual int64_t num_beams() const = 0;       // 1: greedy
  virtual int64_t max_new_tokens() const = 0;
  // The prediction value (Task::score) for a generated reply to `example`; -1 when it holds no answer.
  virtual double prediction_from_reply(const Example& example, const std::string& reply) const = 0;
  // The reply part of the decoded prompt + generation.
  virtual std::string reply_of(const std::string& decoded) const = 0;
  // Whether prediction_from_reply gets the generated tokens decoded alone (true) instead of
  // reply_of(decoded prompt + generation) (false, LLM-Adapters' way).
  virtual bool decodes_reply_alone() const { return false; }
  // Strings that complete a reply (decoded alone): greedy decoding of a reply ends once its text contains one,
  // which changes nothing before it; prediction_from_reply still gets the whole reply to cut. Not used by beam
  // search, where ending a hypothesis early would change which one wins.
  virtual std::vector<std::string> stop_strings() const { return {}; }
  // One sequence per answer `example` offers.
  virtual std::vector<CandidateSequence> candidates(const Example& example, const Tokenizer& tokenizer) const = 0;
  // Whether the log-likelihood protocol also reports acc_norm: the pick by log-likelihood per character of
  // the answer (lm-evaluation-harness' length normalisation).
  virtual bool reports_acc_norm() const { return false; }
};

// ---- registry ----------------------------------------------------------------------------------------------

using TaskFactory = std::function<std::unique_ptr<Task>(Options& options)>;

// Registers a task name (GLUE, commonsense, lm and custom register themselves in tasks/*.cpp).
bool register_task(const std::string& name, TaskFactory factory);
std::vector<std::string> task_names();
// Where a registered task is defined: its shipped task file ("tasks/sst2.yaml") or its C++ source file.
std::string task_source(const std::string& name);

// Makes the task named by options "name"; every other key must be a known option of that task (checked with
// options.finish()). Unknown names: InputError with a did-you-mean, at the line of "name". With a `file` key
// the task is read from that task file (docs/tasks.md); `name`, when also given, must be the file's `task`.
std::unique_ptr<Task> make_task(Options& options);
// Convenience for tests and tools: a task from a YAML text such as "{name: sst2, max_seq_len: 64}".
std::unique_ptr<Task> make_task_from_yaml(const std::string& yaml, const std::string& file = "<task>");

// The split tokenised, through the on-disk cache (key: tokenizer checksum, the split's files' checksums,
// the task's format_options()).
std::vector<TokenizedExample> tokenized_split(const Task& task, const std::string& split, const Tokenizer& tokenizer,
                                              const std::filesystem::path& cache_dir = default_cache_dir(),
                                              bool* cache_hit = nullptr);

// Reads a list of strings or a single string option.
std::vector<std::string> string_list_option(Options& options, const std::string& key,
                                            const std::vector<std::string>& fallback);

}  // namespace peftlab
