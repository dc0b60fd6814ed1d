// Tasks defined by a YAML task file alone (lm-evaluation-harness' task configs are the model): the task's
// name, its data files and their format, templates that turn a record into the model's input, target and
// choices, and an output type that says how it is trained and scored:
//
//   classification         a score head over doc_to_text (one or more texts), doc_to_target one of `labels`
//   regression             the same head with one output, doc_to_target a number
//   multiple_choice        each choice's log-likelihood after the context; acc and length-normalised acc_norm
//   rolling_loglikelihood  documents cut into overlapping blocks; perplexity, bits per byte, NLL per token
//   generate               a greedy reply cut at stop sequences, the answer taken by a regex; exact match, no-match rate
//
// The keys, their defaults and the template syntax: docs/tasks.md (tasks/template.h for templates). A spec
// names a task file with `tasks: [{file: my_task.yaml}]`; the shipped tasks (GLUE) are task files under
// tasks/ compiled into the program.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/options.h"
#include "tasks/task.h"

namespace peftlab {

// The task a task file defines. `text` is the file's content and `file` its name in messages and provenance;
// relative data paths resolve against `base_dir` (the file's folder). `entry` holds the spec entry's keys
// that may override the file's: max_seq_len, max_train_examples, max_eval_examples, data_dir (`name` and
// `file` are read by the caller).
std::unique_ptr<Task> make_file_task(const std::string& text, const std::string& file,
                                     const std::filesystem::path& base_dir, Options& entry);
// The same, reading the file at `path`.
std::unique_ptr<Task> make_file_task(const std::filesystem::path& path, Options& entry);

// The `task` name a task file declares (InputError naming the file when it has none).
std::string task_file_name(const std::filesystem::path& path);

// The task files shipped with the program: (name in provenance, e.g. "tasks/sst2.yaml", text).
const std::vector<std::pair<std::string, std::string>>& shipped_task_files();

}  // namespace peftlab
