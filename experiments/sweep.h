// Expansion of a loaded spec into fully resolved runs: tasks x methods x sweep values x seeds, each with a
// stable, readable id that is also its folder, and sharding of the run list for array jobs.
//
// Run ids: <task label>/<method label>[/<sweep values>]/seed<N>, e.g. sst2/lora-r8/lr=0.001/seed0.
//   method label: the entry's `label` if it has one, else its name with its distinguishing options in this
//                 order: -r<rank>, -<order>, -rslora (when true), -<init_a>, -nodetach (detach_norm(s): false);
//   task label:   the entry's `label`, else its name;
//   when two entries (or method.* / task.* sweep variants) still share a label, each gets -<key>=<value>
//   for every option whose value differs between them (alphabetical); entries that are identical are an
//   error.
//   sweep values: <key>=<value> for each train./eval./record./model. axis in the order written, joined by
//                 ","; <key> is the last segment of the dotted key unless two axes share it. method.* and
//                 task.* axes show in the labels instead.
//   Characters other than letters, digits and ._+=,- become '_'.
// Order: tasks (as listed), then methods (as listed, each with its method.* sweep values), then the other
// sweep axes (the first axis varies slowest), then seeds (as listed).
// A method.* axis applies only to methods that accept the key (SpecHooks::method_accepts; by default every
// method but `full`): a sweep over method.rank does not multiply the runs of full fine-tuning.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "experiments/spec.h"

namespace peftlab {

struct RunSpec {
  std::string id;          // "sst2/lora-r8/lr=0.001/seed0"
  std::string experiment;  // the spec's name
  std::string dir;         // output.dir / id
  std::string method_name, method_label, task_name, task_label;
  YAML::Node method, task;  // `name` and options (sweep values applied, `label` removed), for the registries
  ModelSpec model;
  TrainConfig train;
  EvalConfig eval;
  RecordConfig record;
  int64_t seed = 0;
  std::vector<std::pair<std::string, std::string>> sweep_values;  // every axis that applies to this run
  // The tuned axes among them, with how the analysis chooses their value (SweepAxis::tuned), as JSON:
  // {"axes": ["train.lr"], "split": "validation", "metric": "loss"}; empty when none.
  std::string tuning;
  std::string resolved_yaml;                                      // this run alone, fully resolved (provenance)
  // Errors from reading `method` / `task` through Options(node, sources->primary(), ...) carry global
  // lines: wrap the reading in with_source_locations(*sources, ...) to report file:line.
  std::shared_ptr<const SourceMap> sources;
};

std::vector<RunSpec> expand_spec(const Spec& spec);
// load_spec + expand_spec.
std::vector<RunSpec> load_runs(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

// `--shard i/n` for Slurm array jobs: 0 <= i < n.
struct Shard {
  int64_t index = 0, count = 1;
};
Shard parse_shard(const std::string& text);
// Round-robin: run k belongs to shard k mod n, so every shard gets a mix of methods and tasks.
std::vector<RunSpec> select_shard(const std::vector<RunSpec>& runs, int64_t index, int64_t count);

}  // namespace peftlab
