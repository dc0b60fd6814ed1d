// The experiment spec: one YAML file (plus the files it includes and `--set` overrides from the command line)
// that describes a whole comparison. This header loads and checks it; experiments/sweep.h expands it into
// fully resolved runs. The schema with every default is in docs/spec.md.
//
// Errors are InputErrors naming the file and line where the offending text was written, also when it was
// written in an included file or on the command line (see SourceMap).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/options.h"

namespace peftlab {

// Where each line of a loaded spec came from. yaml-cpp marks a node with a line but not a file, so every
// piece of text (the spec, each included file, each `--set`) is parsed with blank lines in front of it
// that give it its own range of "global" line numbers; locate() maps a global line back to (file, line).
// The spec itself comes first, so its global lines are its own lines. Nodes read through core/options.h
// report global lines under the spec's file name; relocate() turns such an error into the right file:line.
class SourceMap {
 public:
  struct Location {
    std::string file;
    long line = 0;  // 0: no line (a command-line override)
  };

  // Registers `text` read from `file` and returns it padded so that yaml-cpp numbers its lines globally.
  std::string add_file(const std::string& file, const std::string& text);
  // A one-line source whose every node reports `at` (a command-line override, or text derived from a
  // node written at `at`); returns `text` padded onto that line.
  std::string add_alias(const Location& at, const std::string& text);
  // Parses `text` as a YAML node that reports the location `at`.
  YAML::Node parse_at(const Location& at, const std::string& text);

  Location locate(long global_line) const;
  Location locate(const YAML::Node& node) const { return locate(Options::line_of(node)); }
  // An error at a global line of the primary file, moved to the file and line it belongs to.
  InputError relocate(const InputError& error) const;
  // Throws an InputError at `node`'s location.
  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const;

  // The spec's own file: the name Options readers of the merged tree are given.
  const std::string& primary() const { return sources_.front().file; }

 private:
  struct Source {
    std::string file;
    long first = 1, count = 0;  // global lines [first, first + count)
    long fixed_line = -1;       // >= 0: every line of this source reports this line (an alias)
  };
  std::string pad(Source source, const std::string& text);
  std::vector<Source> sources_;
  long next_line_ = 1;
};

// Runs `body`, moving any InputError it throws to the file and line it belongs to, and turning yaml-cpp
// exceptions into InputErrors.
void with_source_locations(const SourceMap& sources, const std::function<void()>& body);

// ---- Typed sections. Every field's default is the value written here (docs/spec.md repeats them). ----

// Random initialisation of a LLaMA-shaped model instead of loading weights.
struct ModelInit {
  int64_t dim = 0, n_layers = 0, n_heads = 0;  // required
  int64_t n_kv_heads = 0;                      // default: n_heads
  int64_t hidden_dim = 0;                      // default: llama2.c's rule, 32 * ceil((8 * dim / 3) / 32)
  int64_t vocab_size = 0;                      // required
  int64_t max_seq_len = 256;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
};

struct ModelSpec {
  std::string path;  // a llama2.c file or a Hugging Face layout folder; exactly one of path/init
  std::optional<ModelInit> init;
  std::string tokenizer;          // default: tokenizer.model in the folder, or beside the file
  std::string dtype = "float32";  // float32 | bfloat16
  std::string device = "cpu";     // cpu | cuda | cuda:N
};

struct TrainConfig {
  std::string optimizer = "adamw";  // the only one for now
  double lr = 1e-4;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;  // written as betas: [b1, b2]
  double eps = 1e-8;
  // Regular expressions (std::regex_search) on parameter names that get no weight decay.
  std::vector<std::string> no_decay = {"norm", "bias", "magnitude"};
  std::string schedule = "linear";      // constant | linear | cosine (decay to 0 at the last step)
  int64_t warmup_steps = 0;             // at most one of warmup_steps / warmup_ratio
  double warmup_ratio = 0.0;            // of the total number of optimizer steps
  int64_t batch_size = 8;               // examples per micro-batch
  int64_t grad_accum = 1;               // micro-batches per optimizer step
  int64_t max_steps = 0;                // optimizer steps; 0: use epochs. At most one of max_steps / epochs
  int64_t epochs = 1;                   // used when max_steps is 0
  double grad_clip = 1.0;               // max global gradient norm; 0: off
  int64_t eval_every = 0;               // optimizer steps; 0: evaluate at the end only
  int64_t save_every = 0;               // optimizer steps; 0: checkpoint at the end only
  bool select_best = false;             // keep the evaluation with the best headline metric as the final model
  int64_t early_stopping_patience = 0;  // evaluations without improvement before stopping; 0: off
  std::string precision = "fp32";       // fp32 | bf16 (autocast, float32 master weights)
  bool activation_checkpointing = false;
  int64_t threads = 0;  // LibTorch intra-op threads; 0: the runner decides
};

struct EvalConfig {
  int64_t batch_size = 32;
  int64_t max_examples = 0;         // per split; 0: all (the first N examples in file order otherwise)
  std::vector<std::string> splits;  // empty: the task's default evaluation splits
  bool write_predictions = false;   // a finished run writes its predictions on unlabelled splits (GLUE test)
  // A hold-out carved from the training split that alone selects (best checkpoint, early stopping); the
  // splits above are then evaluated once, at the end. 0: none; an integer >= 1: a count; (0, 1): a fraction.
  double validation = 0;
  int64_t validation_seed = 0;      // draws the hold-out (stratified by class for classification)
};

struct RecordConfig {
  int64_t log_every = 10;           // optimizer steps between training-metric rows
  int64_t decomposition_every = 0;  // optimizer steps between dM/dD records; 0: off
  bool magnitudes = false;          // also keep the per-feature magnitude vectors
};

// Section readers: strict (unknown key, wrong type, value out of range → InputError at its line).
// They read through Options, so errors carry Options' file and global lines; callers relocate.
ModelSpec read_model(Options& options);
TrainConfig read_train(Options& options);
EvalConfig read_eval(Options& options);
RecordConfig read_record(Options& options);
YAML::Node to_node(const ModelSpec& model);
YAML::Node to_node(const TrainConfig& train);
YAML::Node to_node(const EvalConfig& eval);
YAML::Node to_node(const RecordConfig& record);

// One sweep axis: a dotted key of the resolved run and the values it takes.
struct SweepAxis {
  std::string key;               // "train.lr"
  std::vector<YAML::Node> path;  // one key node per segment, each reporting the sweep key's line
  std::vector<YAML::Node> values;
  YAML::Node key_node;
  // A tuned axis (`{values: [...], select: {split, metric}}`): the analysis keeps, per task and method, the
  // value whose runs do best on `select_split` by `select_metric` (mean over seeds), and reports only those.
  bool tuned = false;
  std::string select_split, select_metric;
};

// A loaded spec: includes merged, overrides applied, ${...} expanded, top level checked.
struct Spec {
  std::string name, description;
  std::string file;  // as given
  YAML::Node root;   // the merged document (without `include`)
  YAML::Node model;  // the sections as written (read into structs per run)
  YAML::Node train, eval, record;
  std::vector<YAML::Node> methods, tasks;
  std::vector<int64_t> seeds;
  std::vector<SweepAxis> sweep;  // in the order written
  std::string output_dir;        // default runs/<name>
  std::shared_ptr<SourceMap> sources;
};

// `overrides` are "a.b=value" strings (value parsed as YAML). Throws InputError.
Spec load_spec(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
// The same from text (fuzzing, tests); includes resolve against the current folder.
Spec load_spec_text(const std::string& text, const std::string& file_name,
                    const std::vector<std::string>& overrides = {});

// ---- Hooks the method and task registries plug into (experiments/registries.h connects them). ----
using SectionValidator = std::function<void(Options&)>;
struct SpecHooks {
  // Known method names; an entry with another name is an error with did-you-mean. Empty: any name.
  std::vector<std::string> method_names;
  // The run-id label of a method entry (`name` plus options, `label` removed): the method's own label.
  // Unset: the entry's name.
  std::function<std::string(const YAML::Node& method)> method_label;
  // Known task names; empty: any name is accepted (until the task registry is plugged in).
  std::vector<std::string> task_names;
  // Whether a `method.<key>` sweep axis applies to a method (one that has the option). Unset: every method.
  std::function<bool(const std::string& method, const std::string& key)> method_accepts;
  // "method" / "task": called for each distinct resolved method / task entry of the expanded runs with
  // Options over the entry (`name` already read, `label` removed); unread keys are then errors.
  std::map<std::string, SectionValidator> validators;
};
SpecHooks& spec_hooks();
void register_section_validator(const std::string& section, SectionValidator validator);

}  // namespace peftlab
