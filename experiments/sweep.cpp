#include "experiments/sweep.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <regex>
#include <set>

namespace peftlab {

namespace fs = std::filesystem;

namespace {

// A method or task entry with the values of its own sweep axes applied.
struct Variant {
  YAML::Node node;   // name + options, label and train removed
  YAML::Node train;  // the entry's own train settings (null: none)
  YAML::Node entry;  // the entry as written (for error locations)
  std::string label;
  bool explicit_label = false;
  std::vector<std::pair<const SweepAxis*, YAML::Node>> assigned;
};

using Assignment = std::vector<std::pair<const SweepAxis*, YAML::Node>>;

std::string sanitize(const std::string& text) {
  std::string out;
  for (unsigned char c : text) out += (std::isalnum(c) || std::strchr("._+=,-", c)) ? char(c) : '_';
  return out.empty() ? std::string("_") : out;
}

// A value as it appears in a run id: scalars as written, lists of scalars joined by '+'.
std::string value_text(const YAML::Node& value) {
  if (value.IsScalar()) return value.Scalar();
  if (value.IsNull()) return "null";
  if (value.IsSequence() && std::all_of(value.begin(), value.end(), [](const YAML::Node& v) { return v.IsScalar(); })) {
    std::vector<std::string> items;
    for (const auto& v : value) items.push_back(v.Scalar());
    return fmt::format("{}", fmt::join(items, "+"));
  }
  YAML::Emitter out;
  out << YAML::Flow << value;
  return out.c_str();
}

const YAML::Node lookup(const YAML::Node& map, const std::string& key) { return map.IsMap() ? map[key] : YAML::Node(); }

// A copy of `node` with the value at path[k..] replaced; mappings on the way are copied (shallowly), so
// the spec's own nodes are never changed and keep their lines.
YAML::Node with_value(const SourceMap& sources, const SweepAxis& axis, const YAML::Node& node, size_t k,
                      const YAML::Node& value) {
  if (k == axis.path.size()) return value;
  if (node && !node.IsNull() && !node.IsMap()) {
    std::vector<std::string> prefix;
    for (size_t i = 0; i < k; ++i) prefix.push_back(axis.path[i].Scalar());
    sources.fail(axis.key_node, fmt::format("sweep: '{}' is not a mapping, so it has no key '{}'",
                                            fmt::join(prefix, "."), axis.path[k].Scalar()));
  }
  const std::string& key = axis.path[k].Scalar();
  YAML::Node copy(YAML::NodeType::Map);
  bool replaced = false;
  if (node && node.IsMap()) {
    for (const auto& entry : node) {
      if (entry.first.Scalar() == key) {
        copy.force_insert(entry.first, with_value(sources, axis, entry.second, k + 1, value));
        replaced = true;
      } else {
        copy.force_insert(entry.first, entry.second);
      }
    }
  }
  if (!replaced) copy.force_insert(axis.path[k], with_value(sources, axis, YAML::Node(), k + 1, value));
  return copy;
}

// Whether an entry's `train` is train settings, which the spec reads: always on a method; on a task only as a
// mapping, since a task may have a `train` option of its own (the custom task's training file), which its
// registry then checks like any other option.
bool is_train_settings(const YAML::Node& value, bool is_method) { return is_method || value.IsMap(); }

// The entry without the keys the spec itself reads (label, train settings), which the registries never see.
YAML::Node registry_options(const YAML::Node& entry, bool is_method) {
  YAML::Node copy(YAML::NodeType::Map);
  for (const auto& e : entry) {
    const std::string& key = e.first.Scalar();
    if (key == "label" || (key == "train" && is_train_settings(e.second, is_method))) continue;
    copy.force_insert(e.first, e.second);
  }
  return copy;
}

// Every combination of the axes' values, the first axis varying slowest.
std::vector<Assignment> combinations(const std::vector<const SweepAxis*>& axes) {
  std::vector<Assignment> out(1);
  for (const SweepAxis* axis : axes) {
    std::vector<Assignment> next;
    for (const auto& partial : out) {
      for (const auto& value : axis->values) {
        Assignment a = partial;
        a.emplace_back(axis, value);
        next.push_back(std::move(a));
      }
    }
    out = std::move(next);
  }
  return out;
}

// Variants that share a label get -key=value for each option whose value differs between them.
void disambiguate(const SourceMap& sources, std::vector<Variant>& variants, const std::string& kind) {
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < variants.size(); ++i) groups[variants[i].label].push_back(i);
  for (const auto& [label, members] : groups) {
    if (members.size() < 2) continue;
    std::vector<std::map<std::string, std::string>> options(members.size());
    std::set<std::string> keys;
    for (size_t m = 0; m < members.size(); ++m) {
      for (const auto& e : variants[members[m]].node) {
        if (e.first.Scalar() == "name") continue;
        options[m][e.first.Scalar()] = value_text(e.second);
        keys.insert(e.first.Scalar());
      }
      if (variants[members[m]].train.IsMap())  // a method's own train settings tell entries apart too
        for (const auto& e : variants[members[m]].train) {
          options[m][e.first.Scalar()] = value_text(e.second);
          keys.insert(e.first.Scalar());
        }
    }
    std::vector<std::string> suffixes(members.size());
    for (const auto& key : keys) {
      std::set<std::string> distinct;
      for (const auto& o : options) distinct.insert(o.count(key) ? o.at(key) : std::string("\x01"));
      if (distinct.size() < 2) continue;
      for (size_t m = 0; m < members.size(); ++m)
        if (options[m].count(key)) suffixes[m] += "-" + key + "=" + options[m].at(key);
    }
    for (size_t m = 0; m < members.size(); ++m) variants[members[m]].label += suffixes[m];
  }
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < variants.size(); ++i) {
    variants[i].label = sanitize(variants[i].label);
    auto [it, inserted] = seen.emplace(variants[i].label, i);
    if (!inserted)
      sources.fail(variants[i].entry,
                   fmt::format("this {} gives the same runs as the one at line {} (label '{}'); remove one or give "
                               "them distinct 'label's",
                               kind, sources.locate(variants[it->second].entry).line, variants[i].label));
  }
}

std::vector<Variant> make_variants(const SourceMap& sources, const std::vector<YAML::Node>& entries,
                                   const std::vector<const SweepAxis*>& axes, bool is_method) {
  const SpecHooks& hooks = spec_hooks();
  std::vector<Variant> variants;
  std::set<const SweepAxis*> used;
  for (const auto& entry : entries) {
    std::string name = entry["name"].Scalar();
    std::vector<const SweepAxis*> applicable;
    for (const SweepAxis* axis : axes) {
      std::string key = axis->key.substr(axis->key.find('.') + 1);
      bool accepts = !is_method || (!hooks.method_accepts || hooks.method_accepts(name, key));
      if (accepts) applicable.push_back(axis), used.insert(axis);
    }
    for (const auto& assignment : combinations(applicable)) {
      Variant v;
      v.entry = entry;
      v.node = registry_options(entry, is_method);
      if (YAML::Node train = lookup(entry, "train"))  // (assigning a missing key's node throws)
        if (is_train_settings(train, is_method)) v.train = train;
      if (v.train && !v.train.IsNull() && !v.train.IsMap())
        sources.fail(v.train, "a method's train: is a mapping of train settings, e.g. {lr: 3.0e-4}");
      for (const auto& [axis, value] : assignment) v.node = with_value(sources, *axis, v.node, 1, value);
      v.assigned = assignment;
      YAML::Node label = lookup(entry, "label");
      v.explicit_label = static_cast<bool>(label);
      v.label = label ? label.Scalar() : is_method && hooks.method_label ? hooks.method_label(v.node) : name;
      variants.push_back(std::move(v));
    }
  }
  for (const SweepAxis* axis : axes)  // a sweep that changes nothing is a mistake, not a no-op
    if (!used.count(axis))
      sources.fail(axis->key_node, fmt::format("sweep: '{}' applies to none of the methods", axis->key));
  disambiguate(sources, variants, is_method ? "method" : "task");
  return variants;
}

// A run's tuned axes with its values of them, and how the analysis chooses among values, for the run file:
// {"axes": {"train.lr": "3e-4"}, "split": "validation", "metric": "loss"}; empty without tuned axes.
std::string tuning_json(const Spec& spec, const std::vector<std::pair<std::string, std::string>>& values) {
  nlohmann::json axes = nlohmann::json::object();
  std::string split, metric;
  for (const auto& axis : spec.sweep) {
    if (!axis.tuned) continue;
    if (!axes.empty() && (axis.select_split != split || axis.select_metric != metric))
      spec.sources->fail(axis.key_node, "sweep: every tuned axis must select alike (one split and metric)");
    for (const auto& [key, value] : values)
      if (key == axis.key) axes[key] = value;
    split = axis.select_split, metric = axis.select_metric;
  }
  if (axes.empty()) return "";
  return nlohmann::json{{"axes", axes}, {"split", split}, {"metric", metric}}.dump();
}

// The id segment of the train/eval/record/model axes: key=value,...
std::string sweep_segment(const Assignment& assignment) {
  std::vector<std::string> parts;
  for (const auto& [axis, value] : assignment) {
    std::string last = axis->path.back().Scalar();
    bool shared = std::count_if(assignment.begin(), assignment.end(),
                                [&](const auto& other) { return other.first->path.back().Scalar() == last; }) > 1;
    parts.push_back((shared ? axis->key : last) + "=" + value_text(value));
  }
  return sanitize(fmt::format("{}", fmt::join(parts, ",")));
}

void run_validator(const SourceMap& sources, const std::string& section, const YAML::Node& node) {
  auto& validators = spec_hooks().validators;
  auto it = validators.find(section);
  if (it == validators.end() || !it->second) return;
  Options options(node, sources.primary(), section);
  options.get<std::string>("name", "");
  it->second(options);
  options.finish();
}

std::string resolved_yaml(const RunSpec& run) {
  YAML::Node root(YAML::NodeType::Map);
  root["id"] = run.id;
  root["experiment"] = run.experiment;
  root["dir"] = run.dir;
  root["seed"] = run.seed;
  root["model"] = to_node(run.model);
  YAML::Node method(YAML::NodeType::Map);
  method["label"] = run.method_label;
  for (const auto& e : run.method) method[e.first.Scalar()] = e.second;
  root["method"] = method;
  YAML::Node task(YAML::NodeType::Map);
  task["label"] = run.task_label;
  for (const auto& e : run.task) task[e.first.Scalar()] = e.second;
  root["task"] = task;
  root["train"] = to_node(run.train);
  root["eval"] = to_node(run.eval);
  root["record"] = to_node(run.record);
  YAML::Node sweep(YAML::NodeType::Map);
  for (const auto& [key, value] : run.sweep_values) sweep[key] = value;
  sweep.SetStyle(YAML::EmitterStyle::Flow);
  root["sweep"] = sweep;
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

struct Sections {
  ModelSpec model;
  TrainConfig train;
  EvalConfig eval;
  RecordConfig record;
};

// The train section with a task entry's and a method entry's own settings written over it, key by key (a
// task's recipe, e.g. the LoRA paper's learning rate per GLUE task, and a method's, e.g. full fine-tuning's
// smaller rate). A key that two of task entry, method entry and sweep set is ambiguous: an error at its line.
YAML::Node train_for(const Spec& spec, const Variant& task, const Variant& method, const Assignment& assignment) {
  const auto own = [](const Variant& v) { return v.train && v.train.IsMap() && v.train.size() > 0; };
  if (!own(task) && !own(method)) return spec.train;
  YAML::Node merged(YAML::NodeType::Map);
  // An entry's key set to null (e.g. by --set tasks.0.train.max_steps=null) is not set: the train section's
  // value stays.
  const auto sets = [&](const Variant& v, const std::string& key) {
    if (!own(v)) return false;
    const YAML::Node value = v.train[key];
    return value.IsDefined() && !value.IsNull();
  };
  const auto set_by_entry = [&](const std::string& key) { return sets(task, key) || sets(method, key); };
  if (spec.train && spec.train.IsMap())
    for (const auto& e : spec.train)
      if (!set_by_entry(e.first.Scalar())) merged.force_insert(e.first, e.second);
  for (const Variant* entry : {&task, &method}) {
    if (!own(*entry)) continue;
    const char* kind = entry == &task ? "task" : "method";
    for (const auto& e : entry->train) {
      const std::string key = e.first.Scalar();
      if (e.second.IsNull()) continue;
      for (const auto& [axis, value] : assignment)
        if (axis->key == "train." + key)
          spec.sources->fail(e.first, fmt::format("train.{} is set by this {} entry and swept by sweep: {}; keep one",
                                                  key, kind, axis->key));
      if (entry == &method && sets(task, key))
        spec.sources->fail(e.first, fmt::format("train.{} is set by this method entry and by the task entry at line "
                                                "{}; keep one", key, spec.sources->locate(task.train[key]).line));
      merged.force_insert(e.first, e.second);
    }
  }
  return merged;
}

Sections read_sections(const Spec& spec, const Variant& task, const Variant& method, const Assignment& assignment) {
  std::map<std::string, YAML::Node> nodes = {{"model", spec.model},
                                             {"train", train_for(spec, task, method, assignment)},
                                             {"eval", spec.eval},
                                             {"record", spec.record}};
  for (const auto& [axis, value] : assignment) {
    YAML::Node& section = nodes[axis->path[0].Scalar()];
    section = with_value(*spec.sources, *axis, section, 1, value);
  }
  const std::string& file = spec.sources->primary();
  Options model(nodes["model"], file, "model"), train(nodes["train"], file, "train"), eval(nodes["eval"], file, "eval"),
      record(nodes["record"], file, "record");
  return {read_model(model), read_train(train), read_eval(eval), read_record(record)};
}

std::vector<RunSpec> expand(const Spec& spec) {
  const SourceMap& sources = *spec.sources;
  std::vector<const SweepAxis*> method_axes, task_axes, other_axes;
  for (const auto& axis : spec.sweep) {
    const std::string& section = axis.path[0].Scalar();
    (section == "method" ? method_axes : section == "task" ? task_axes : other_axes).push_back(&axis);
  }
  std::vector<Variant> methods = make_variants(sources, spec.methods, method_axes, true);
  std::vector<Variant> tasks = make_variants(sources, spec.tasks, task_axes, false);
  for (const auto& m : methods) run_validator(sources, "method", m.node);
  for (const auto& t : tasks) run_validator(sources, "task", t.node);

  std::vector<Assignment> other = combinations(other_axes);
  // [task][method][assignment]
  std::vector<std::vector<std::vector<Sections>>> sections(tasks.size(), std::vector<std::vector<Sections>>(methods.size()));
  for (size_t t = 0; t < tasks.size(); ++t)
    for (size_t m = 0; m < methods.size(); ++m)
      for (const auto& assignment : other) sections[t][m].push_back(read_sections(spec, tasks[t], methods[m], assignment));

  std::vector<RunSpec> runs;
  std::set<std::string> ids;
  for (size_t t = 0; t < tasks.size(); ++t) {
    const Variant& task = tasks[t];
    for (size_t m = 0; m < methods.size(); ++m) {
      const Variant& method = methods[m];
      for (size_t c = 0; c < other.size(); ++c) {
        for (int64_t seed : spec.seeds) {
          RunSpec run;
          run.experiment = spec.name;
          run.method_name = method.node["name"].Scalar();
          run.method_label = method.label;
          run.task_name = task.node["name"].Scalar();
          run.task_label = task.label;
          run.method = method.node;
          run.task = task.node;
          run.model = sections[t][m][c].model;
          run.train = sections[t][m][c].train;
          run.eval = sections[t][m][c].eval;
          run.record = sections[t][m][c].record;
          run.seed = seed;
          const Assignment* assigned_parts[] = {&task.assigned, &method.assigned, &other[c]};
          for (const Assignment* assigned : assigned_parts)
            for (const auto& [axis, value] : *assigned) run.sweep_values.emplace_back(axis->key, value_text(value));
          run.tuning = tuning_json(spec, run.sweep_values);
          std::string segment = other_axes.empty() ? "" : sweep_segment(other[c]) + "/";
          run.id = fmt::format("{}/{}/{}seed{}", task.label, method.label, segment, seed);
          if (!ids.insert(run.id).second)  // two sweep values that read the same once made folder-safe
            sources.fail(other_axes.empty() ? YAML::Node() : other_axes.front()->key_node,
                         fmt::format("two runs would share the folder '{}'", run.id));
          run.dir = (fs::path(spec.output_dir) / run.id).string();
          run.sources = spec.sources;
          run.resolved_yaml = resolved_yaml(run);
          runs.push_back(std::move(run));
        }
      }
    }
  }
  return runs;
}

}  // namespace

std::vector<RunSpec> expand_spec(const Spec& spec) {
  std::vector<RunSpec> runs;
  with_source_locations(*spec.sources, [&] { runs = expand(spec); });
  return runs;
}

std::vector<RunSpec> load_runs(const fs::path& file, const std::vector<std::string>& overrides) {
  return expand_spec(load_spec(file, overrides));
}

Shard parse_shard(const std::string& text) {
  static const std::regex pattern("([0-9]{1,9})/([0-9]{1,9})");
  std::smatch match;
  Shard shard;
  if (std::regex_match(text, match, pattern)) {
    shard.index = std::stoll(match[1]);
    shard.count = std::stoll(match[2]);
    if (shard.count >= 1 && shard.index < shard.count) return shard;
  }
  throw InputError("--shard", fmt::format("expected i/n with 0 <= i < n (e.g. 0/4), got '{}'", text));
}

std::vector<RunSpec> select_shard(const std::vector<RunSpec>& runs, int64_t index, int64_t count) {
  if (count < 1 || index < 0 || index >= count)
    throw InputError("--shard", fmt::format("expected 0 <= i < n, got {}/{}", index, count));
  std::vector<RunSpec> selected;
  for (size_t k = static_cast<size_t>(index); k < runs.size(); k += static_cast<size_t>(count))
    selected.push_back(runs[k]);
  return selected;
}

}  // namespace peftlab
