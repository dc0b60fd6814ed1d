// Loading a spec: includes, variables, --set overrides, entries, seeds and sweep axes, then the runs.
#include "experiments/spec.h"
#include "experiments/spec_sections.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/data_root.h"
#include "core/suggest.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

const char* const kSweepSections[] = {"model", "method", "task", "train", "eval", "record"};

std::string read_text(const fs::path& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = in.good() && fs::is_regular_file(path);
  if (!*ok) return {};
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a byte-order mark would follow the padding
  return text;
}

// The key of a mapping entry as text; keys must be plain scalars.
std::string key_text(const SourceMap& sources, const YAML::Node& key) {
  if (!key.IsScalar()) sources.fail(key, "a key must be a plain name, not a list or mapping");
  return key.Scalar();
}

// Nodes a spec may hold once its aliases are expanded. Real specs have a few hundred; without a bound, a few
// lines of nested aliases ("billion laughs") make every walk of the tree take for ever (found by fuzz_spec).
constexpr size_t kMaxSpecNodes = 100000;

// yaml-cpp keeps duplicate keys (and reads the first); a spec with two `lr:` is a mistake, not a choice.
// Also bounds the size of the tree (kMaxSpecNodes), counted in `visited`.
void check_unique_keys(const SourceMap& sources, const YAML::Node& node, const std::string& path, size_t& visited) {
  if (++visited > kMaxSpecNodes)
    sources.fail(node, fmt::format("the spec holds more than {} values once its aliases (*name) are expanded "
                                   "(reached at {})",
                                   kMaxSpecNodes, path));
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      check_unique_keys(sources, node[i], fmt::format("{}[{}]", path, i), visited);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Node> seen;
  for (const auto& entry : node) {
    std::string key = key_text(sources, entry.first);
    std::string full = path.empty() ? key : path + "." + key;
    auto [it, inserted] = seen.emplace(key, entry.first);
    if (!inserted)
      sources.fail(entry.first,
                   fmt::format("duplicate key '{}' (first written at line {})", full, sources.locate(it->second).line));
    check_unique_keys(sources, entry.second, full, visited);
  }
}

// Deep merge: `over` wins; mappings merge key by key, anything else (lists included) replaces. Mutates and
// returns `over`, keeping its nodes (and so their lines).
YAML::Node merge(const YAML::Node& base, YAML::Node over) {
  if (!base.IsMap() || !over.IsMap()) return over;
  for (const auto& entry : base) {
    const YAML::Node& lookup = over;
    YAML::Node mine = lookup[entry.first.Scalar()];
    if (!mine)
      over.force_insert(entry.first, entry.second);
    else if (mine.IsMap() && entry.second.IsMap())
      merge(entry.second, mine);
  }
  return over;
}

// ${data} and ${env:NAME} in one string.
std::string expand_string(const SourceMap& sources, const YAML::Node& node, const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t start = text.find("${", pos);
    if (start == std::string::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string::npos) sources.fail(node, fmt::format("unterminated '${{' in '{}'", text));
    out += text.substr(pos, start - pos);
    std::string name = text.substr(start + 2, end - start - 2);
    if (name == "data") {
      out += data_root().string();
    } else if (name.rfind("env:", 0) == 0 && name.size() > 4) {
      const char* value = std::getenv(name.substr(4).c_str());
      if (value == nullptr)
        sources.fail(node, fmt::format("environment variable '{}' is not set (used as ${{{}}})", name.substr(4), name));
      out += value;
    } else {
      sources.fail(node, fmt::format("unknown variable '${{{}}}' (known: ${{data}}, ${{env:NAME}})", name));
    }
    pos = end + 1;
  }
  return out + text.substr(pos);
}

void expand_variables(const SourceMap& sources, YAML::Node node) {
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text.find("${") != std::string::npos) node = expand_string(sources, node, text);
  } else if (node.IsSequence()) {
    for (auto item : node) expand_variables(sources, item);
  } else if (node.IsMap()) {
    for (auto entry : node) expand_variables(sources, entry.second);
  }
}

// "a.b" -> {a, b}; "a." -> {a, ""}; "" -> {""} (never empty: callers look at the first part).
std::vector<std::string> split(const std::string& text, char separator) {
  if (text.empty()) return {""};
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.push_back("");
  return parts;
}

std::string single_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

class Loader {
 public:
  explicit Loader(std::shared_ptr<SourceMap> sources) : sources_(std::move(sources)) {}

  // Parses one file's text and merges in what it includes.
  YAML::Node load_text(const std::string& text, const std::string& display, const fs::path& folder) {
    std::string padded = sources_->add_file(display, text);
    check_single_document(padded);
    YAML::Node root = YAML::Load(padded);
    if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) sources_->fail(root, "a spec must be a mapping of sections (name, model, methods, ...)");
    size_t visited = 0;
    check_unique_keys(*sources_, root, "", visited);

    YAML::Node merged(YAML::NodeType::Map);
    for (const YAML::Node& item : include_items(root)) merged = merge(merged, load_included(item, folder));
    root.remove("include");
    return merge(merged, root);
  }

  YAML::Node load_file(const fs::path& path, const std::string& display) {
    bool ok = false;
    std::string text = read_text(path, &ok);
    if (!ok) throw InputError(display, "cannot read the spec file");
    stack_.push_back(fs::weakly_canonical(path));
    YAML::Node root = load_text(text, display, path.parent_path());
    stack_.pop_back();
    return root;
  }

 private:
  std::vector<YAML::Node> include_items(const YAML::Node& root) {
    const YAML::Node& lookup = root;
    YAML::Node include = lookup["include"];
    if (!include || include.IsNull()) return {};
    std::vector<YAML::Node> items;
    if (include.IsScalar())
      items.push_back(include);
    else if (include.IsSequence())
      for (const auto& item : include) items.push_back(item);
    if (items.empty() && !include.IsSequence())
      sources_->fail(include, "include: expected a file path or a list of file paths");
    for (const auto& item : items)
      if (!item.IsScalar() || item.Scalar().empty()) sources_->fail(item, "include: expected a file path");
    return items;
  }

  YAML::Node load_included(const YAML::Node& item, const fs::path& folder) {
    fs::path path(expand_string(*sources_, item, item.Scalar()));
    if (path.is_relative()) path = (folder / path).lexically_normal();
    fs::path canonical = fs::weakly_canonical(path);
    auto cycle_start = std::find(stack_.begin(), stack_.end(), canonical);
    if (cycle_start != stack_.end()) {
      std::vector<std::string> chain;
      for (auto it = cycle_start; it != stack_.end(); ++it) chain.push_back(it->filename().string());
      chain.push_back(canonical.filename().string());
      sources_->fail(item, fmt::format("include cycle: {}", fmt::join(chain, " -> ")));
    }
    if (fs::is_directory(path))
      sources_->fail(item, fmt::format("included file '{}' is a folder, not a file", path.string()));
    if (fs::exists(path) && !fs::is_regular_file(path))
      sources_->fail(item, fmt::format("included file '{}' is not a regular file", path.string()));
    if (!fs::is_regular_file(path))
      sources_->fail(item, fmt::format("included file '{}' does not exist", path.string()));
    return load_file(path, path.string());
  }

  // Where each document starts and where its first node is, for the first two documents.
  struct DocumentMarks : YAML::EventHandler {
    std::vector<YAML::Mark> starts, nodes;
    void node(const YAML::Mark& mark) {
      if (nodes.size() < starts.size()) nodes.push_back(mark);
    }
    void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { node(mark); }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
      node(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
      node(mark);
    }
    void OnMapEnd() override {}
  };

  // A spec is one YAML document. Checked with yaml-cpp's event parser, stopping at the second document, not
  // with YAML::LoadAll: on a document that starts with a stray ',' yaml-cpp 0.7 emits an empty document
  // without consuming the ',', so LoadAll loops for ever, allocating (found by fuzz_spec).
  void check_single_document(const std::string& padded) {
    std::istringstream in(padded);
    YAML::Parser parser(in);
    DocumentMarks marks;
    while (marks.starts.size() < 2 && parser.HandleNextDocument(marks)) {
    }
    if (marks.starts.size() < 2) return;
    SourceMap::Location at = sources_->locate(marks.starts[1].line + 1L);
    if (marks.starts[1].pos == marks.starts[0].pos)  // no progress: the parser is stuck on this character
      throw InputError(at.file, fmt::format("cannot parse as YAML: unexpected '{}' at column {}",
                                            padded[static_cast<size_t>(marks.starts[1].pos)], marks.starts[1].column + 1),
                       at.line);
    const YAML::Mark& second = marks.nodes.size() > 1 ? marks.nodes[1] : marks.starts[1];
    at = sources_->locate(second.line + 1L);
    throw InputError(at.file, "a spec file holds one YAML document, found several", at.line);
  }

  std::shared_ptr<SourceMap> sources_;
  std::vector<fs::path> stack_;
};

// `--set a.b=value`: walks the merged document along a.b (creating mappings on the way; entries of the
// `methods` / `tasks` lists are chosen by index, label or name) and replaces the value. Keys that the
// schema does not know are left for the strict readers to reject, so the message names `--set ...`.
class Override {
 public:
  Override(SourceMap& sources, const std::string& text) : sources_(sources), at_{"--set " + text, 0} {
    size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError(at_.file, "expected key=value");
    key_ = text.substr(0, eq);
    if (key_ == "include") throw InputError(at_.file, "includes are resolved before overrides; edit the spec instead");
    value_ = sources_.parse_at(at_, text.substr(eq + 1));
    segments_ = split(key_, '.');
    if (segments_.size() > 1 && segments_[0] == "sweep") {  // sweep keys are themselves dotted
      segments_ = {"sweep", key_.substr(6)};
    }
    for (const auto& s : segments_)
      if (s.empty()) throw InputError(at_.file, fmt::format("'{}' is not a dotted key path", key_));
  }

  void apply(YAML::Node root) { set(root, 0); }

 private:
  std::string prefix(size_t i) const {
    std::string p;
    for (size_t k = 0; k < i; ++k) p += (k ? "." : "") + segments_[k];
    return p;
  }

  void set(YAML::Node node, size_t i) {
    const std::string& segment = segments_[i];
    if (node.IsSequence()) {
      if (i + 1 == segments_.size())
        throw InputError(at_.file, fmt::format("'{}' names an entry; set one of its keys, or replace the "
                                               "whole list with --set {}=[...]",
                                               key_, prefix(i)));
      for (YAML::Node entry : select_entries(node, i)) set(entry, i + 1);
      return;
    }
    if (!node.IsMap())
      throw InputError(at_.file, fmt::format("'{}' is not a mapping, so it has no key '{}'", prefix(i), segment));
    const YAML::Node& lookup = node;
    YAML::Node child = lookup[segment];
    if (i + 1 == segments_.size()) {
      if (child)
        child = value_;
      else
        node.force_insert(sources_.parse_at(at_, single_quoted(segment)), value_);
      return;
    }
    if (!child) {  // (a missing key's node is invalid: it cannot be assigned to)
      YAML::Node created(YAML::NodeType::Map);
      node.force_insert(sources_.parse_at(at_, single_quoted(segment)), created);
      set(created, i + 1);
      return;
    }
    if (child.IsNull()) {
      child = YAML::Node(YAML::NodeType::Map);
    }
    set(child, i + 1);
  }

  std::vector<YAML::Node> select_entries(YAML::Node list, size_t i) {
    const std::string& selector = segments_[i];
    std::vector<YAML::Node> chosen;
    std::vector<std::string> names;
    bool is_index = !selector.empty() &&
                    std::all_of(selector.begin(), selector.end(), [](unsigned char c) { return std::isdigit(c); });
    // An index too large for size_t matches no entry (std::stoul threw std::out_of_range: found by fuzz_spec).
    size_t index = 0;
    const bool index_fits =
        is_index && std::from_chars(selector.data(), selector.data() + selector.size(), index).ec == std::errc();
    for (size_t k = 0; k < list.size(); ++k) {
      YAML::Node entry = list[k];
      if (is_index) {
        if (index_fits && index == k) chosen.push_back(entry);
        continue;
      }
      for (const char* field : {"label", "name"}) {
        const YAML::Node& lookup = entry;
        if (!entry.IsMap() || !lookup[field] || !lookup[field].IsScalar()) continue;
        names.push_back(lookup[field].Scalar());
        if (names.back() == selector) {
          chosen.push_back(entry);
          break;
        }
      }
    }
    if (chosen.empty()) {
      if (is_index)
        throw InputError(at_.file,
                         fmt::format("{} has {} entries, there is no entry {}", prefix(i), list.size(), selector));
      throw InputError(at_.file, fmt::format("{}: {}", prefix(i), unknown_name_message("entry", selector, names)));
    }
    return chosen;
  }

  SourceMap& sources_;
  SourceMap::Location at_;
  std::string key_;
  YAML::Node value_;
  std::vector<std::string> segments_;
};

void check_entry(const SourceMap& sources, const YAML::Node& entry, const std::string& path,
                 const std::vector<std::string>& known_names, const std::string& kind) {
  if (!entry.IsMap()) sources.fail(entry, fmt::format("{}: expected a mapping with a 'name' and its options", path));
  const YAML::Node& lookup = entry;
  YAML::Node name = lookup["name"];
  if (!name || !name.IsScalar() || name.Scalar().empty())
    sources.fail(name ? name : entry, fmt::format("{}: expected a '{}' name", path, kind));
  if (!known_names.empty() && std::find(known_names.begin(), known_names.end(), name.Scalar()) == known_names.end())
    sources.fail(name, fmt::format("{}.name: {}", path, unknown_name_message(kind, name.Scalar(), known_names)));
  if (YAML::Node label = lookup["label"]) {
    static const std::regex label_pattern("[A-Za-z0-9._+=,-]+");
    if (!label.IsScalar() || !std::regex_match(label.Scalar(), label_pattern))
      sources.fail(label, fmt::format("{}.label: expected a name of letters, digits and ._+=,-", path));
  }
}

// A task entry `{file: my_task.yaml}`: the path is resolved against the folder of the file that wrote it (as
// includes are) and written back, and the entry gets the task file's `task` as its name, so that run ids and
// tables show it. The task registry reads the file itself (docs/tasks.md).
void resolve_task_file(SourceMap& sources, YAML::Node entry) {
  if (!entry.IsMap()) return;
  YAML::Node file = entry["file"];
  if (!file) return;
  if (!file.IsScalar() || file.Scalar().empty()) sources.fail(file, "file: expected the path of a task file");
  const SourceMap::Location at = sources.locate(file);
  fs::path path = file.Scalar();
  if (path.is_relative() && at.line > 0 && fs::is_regular_file(at.file)) path = fs::path(at.file).parent_path() / path;
  if (!fs::is_regular_file(path)) sources.fail(file, fmt::format("file: no task file '{}'", path.string()));
  path = fs::absolute(path).lexically_normal();  // provenance and later `eval` runs do not depend on the folder
  std::string name;
  try {
    YAML::Node root = YAML::LoadFile(path.string());
    if (root.IsMap() && root["task"] && root["task"].IsScalar()) name = root["task"].Scalar();
  } catch (const YAML::Exception& e) {
    throw InputError(path.string(), "invalid YAML: " + e.msg, e.mark.line + 1);
  }
  if (name.empty()) throw InputError(path.string(), "a task file names its task: `task: my_task`");
  entry["file"] = sources.parse_at(at, single_quoted(path.string()));
  if (!entry["name"]) entry["name"] = sources.parse_at(at, single_quoted(name));
}

std::vector<YAML::Node> read_entries(SourceMap& sources, Options& top, const std::string& key,
                                     const std::vector<std::string>& known_names, const std::string& kind) {
  YAML::Node list = top.raw(key);
  if (!list || list.IsNull())
    throw InputError(top.file(), fmt::format("missing required section '{}' (a list of {}s)", key, kind));
  if (!list.IsSequence() || list.size() == 0)
    sources.fail(list, fmt::format("{}: expected a non-empty list of {}s", key, kind));
  std::vector<YAML::Node> entries;
  for (size_t i = 0; i < list.size(); ++i) {
    const bool from_file = kind == "task" && list[i].IsMap() && list[i]["file"];
    if (from_file) resolve_task_file(sources, list[i]);
    // A task file's name need not be a registered one.
    check_entry(sources, list[i], fmt::format("{}[{}]", key, i), from_file ? std::vector<std::string>{} : known_names,
                kind);
    entries.push_back(list[i]);
  }
  return entries;
}

std::vector<int64_t> read_seeds(const SourceMap& sources, Options& top) {
  YAML::Node node = top.raw("seeds");
  if (!node || node.IsNull()) return {0};
  if (!node.IsSequence() || node.size() == 0) sources.fail(node, "seeds: expected a non-empty list of integers");
  std::vector<int64_t> seeds;
  for (const auto& item : node) {
    int64_t seed = -1;
    try {
      seed = item.as<int64_t>();
    } catch (const YAML::Exception&) {
      sources.fail(item,
                   fmt::format("seeds: expected an integer, got '{}'", item.IsScalar() ? item.Scalar() : "a list"));
    }
    if (seed < 0) sources.fail(item, fmt::format("seeds: expected an integer >= 0, got {}", seed));
    if (std::find(seeds.begin(), seeds.end(), seed) != seeds.end())
      sources.fail(item, fmt::format("seeds: seed {} is listed twice", seed));
    seeds.push_back(seed);
  }
  return seeds;
}

std::vector<SweepAxis> read_sweep(SourceMap& sources, Options& top) {
  YAML::Node node = top.raw("sweep");
  std::vector<SweepAxis> axes;
  if (!node || node.IsNull()) return axes;
  if (!node.IsMap()) sources.fail(node, "sweep: expected a mapping from a dotted key (train.lr) to a list of values");
  std::vector<std::string> sections(std::begin(kSweepSections), std::end(kSweepSections));
  for (const auto& entry : node) {
    SweepAxis axis;
    axis.key = entry.first.Scalar();
    axis.key_node = entry.first;
    std::vector<std::string> segments = split(axis.key, '.');
    if (segments[0] == "seed" || segments[0] == "seeds")
      sources.fail(entry.first, "sweep: seeds are swept by the top-level 'seeds' list");
    if (std::find(sections.begin(), sections.end(), segments[0]) == sections.end())
      sources.fail(entry.first, fmt::format("sweep: '{}' is not a key of a run: {}", axis.key,
                                            unknown_name_message("section", segments[0], sections)));
    if (segments.size() < 2 || std::any_of(segments.begin(), segments.end(), [](auto& s) { return s.empty(); }))
      sources.fail(entry.first,
                   fmt::format("sweep: '{}' must name a key inside a section, e.g. {}.lr", axis.key, segments[0]));
    YAML::Node values = entry.second;
    if (values.IsMap()) {  // a tuned axis: {values: [...], select: {split: validation, metric: loss}}
      for (const auto& field : values)
        if (field.first.Scalar() != "values" && field.first.Scalar() != "select")
          sources.fail(field.first, fmt::format("sweep.{}: unknown key '{}' (a tuned axis has values and select)",
                                                axis.key, field.first.Scalar()));
      YAML::Node select = values["select"];
      if (!select || !select.IsMap())
        sources.fail(select ? select : entry.second,
                     fmt::format("sweep.{}: select: expected {{split: validation, metric: loss}}", axis.key));
      if (segments[0] == "method" || segments[0] == "task")
        sources.fail(entry.first, fmt::format("sweep.{}: only train, eval, model and record axes can be tuned (a "
                                              "method or task axis makes its own rows)", axis.key));
      axis.tuned = true;
      axis.select_split = "validation";
      axis.select_metric = "loss";
      for (const auto& field : select) {
        const std::string& name = field.first.Scalar();
        if ((name != "split" && name != "metric") || !field.second.IsScalar() || field.second.Scalar().empty())
          sources.fail(field.first, fmt::format("sweep.{}.select: expected split and metric names, got '{}'", axis.key, name));
        (name == "split" ? axis.select_split : axis.select_metric) = field.second.Scalar();
      }
      values = values["values"];
    }
    if (!values || !values.IsSequence() || values.size() == 0)
      sources.fail(!values || values.IsNull() ? entry.first : values,
                   fmt::format("sweep.{}: expected a non-empty list of values", axis.key));
    std::set<std::string> seen;
    for (const auto& value : values) {
      YAML::Emitter text;
      text << YAML::Flow << value;
      if (!seen.insert(text.c_str()).second)
        sources.fail(value, fmt::format("sweep.{}: value '{}' is listed twice", axis.key, text.c_str()));
      axis.values.push_back(value);
    }
    for (const auto& s : segments) axis.path.push_back(sources.parse_at(sources.locate(entry.first), single_quoted(s)));
    axes.push_back(std::move(axis));
  }
  return axes;
}

std::string default_name(const std::string& file) {
  std::string stem = fs::path(file).stem().string();
  return stem.empty() ? "experiment" : stem;
}

void finish_spec(Spec& spec, const std::vector<std::string>& overrides) {
  SourceMap& sources = *spec.sources;
  for (const auto& text : overrides) Override(sources, text).apply(spec.root);
  expand_variables(sources, spec.root);

  Options top(spec.root, sources.primary(), "");
  spec.name = top.get<std::string>("name", default_name(spec.file));
  static const std::regex name_pattern("[A-Za-z0-9._+=,-]+");
  if (!std::regex_match(spec.name, name_pattern) || spec.name == "." || spec.name == "..")
    bad_value(top, "name", fmt::format("'{}' must be a folder name of letters, digits and ._+=,-", spec.name));
  spec.description = top.get<std::string>("description", "");
  spec.model = top.raw("model");
  if (!spec.model || spec.model.IsNull())
    throw InputError(top.file(), "missing required section 'model' (path or init)");
  Options model(spec.model, sources.primary(), "model");
  read_model(model);  // checked once here; read again for each run after its sweep values are applied
  spec.methods = read_entries(sources, top, "methods", spec_hooks().method_names, "method");
  spec.tasks = read_entries(sources, top, "tasks", spec_hooks().task_names, "task");
  spec.seeds = read_seeds(sources, top);
  spec.train = top.raw("train");
  spec.eval = top.raw("eval");
  spec.record = top.raw("record");
  Options train(spec.train, sources.primary(), "train"), eval(spec.eval, sources.primary(), "eval"),
      record(spec.record, sources.primary(), "record");
  read_train(train), read_eval(eval), read_record(record);
  spec.sweep = read_sweep(sources, top);
  Options output = top.child("output");
  spec.output_dir = output.get<std::string>("dir", "runs/" + spec.name);
  if (spec.output_dir.empty()) bad_value(output, "dir", "must not be empty");
  output.finish();
  top.raw("include");  // consumed by the loader
  // `smoke`: the spec's own additions to the smoke profile (experiments/smoke_profile.h), read by --smoke.
  if (YAML::Node smoke = top.raw("smoke"); smoke && !smoke.IsNull()) {
    if (!smoke.IsSequence()) sources.fail(smoke, "smoke: expected a list of key=value overrides");
    for (const auto& item : smoke)
      if (!item.IsScalar() || item.Scalar().find('=') == std::string::npos)
        sources.fail(item, "smoke: expected a list of key=value overrides");
  }
  top.finish();
}

}  // namespace

Spec load_spec(const fs::path& file, const std::vector<std::string>& overrides) {
  Spec spec;
  spec.file = file.string();
  spec.sources = std::make_shared<SourceMap>();
  // The spec's own text is registered first (by load_file) so that its global lines are its own lines.
  with_source_locations(*spec.sources, [&] {
    Loader loader(spec.sources);
    spec.root = loader.load_file(file, spec.file);
    finish_spec(spec, overrides);
  });
  return spec;
}

Spec load_spec_text(const std::string& text, const std::string& file_name, const std::vector<std::string>& overrides) {
  Spec spec;
  spec.file = file_name;
  spec.sources = std::make_shared<SourceMap>();
  with_source_locations(*spec.sources, [&] {
    Loader loader(spec.sources);
    spec.root = loader.load_text(text, file_name, fs::current_path());
    finish_spec(spec, overrides);
  });
  return spec;
}

SpecHooks& spec_hooks() {
  static SpecHooks hooks;
  return hooks;
}

void register_section_validator(const std::string& section, SectionValidator validator) {
  if (section != "method" && section != "task")
    throw std::invalid_argument("section validators are keyed 'method' or 'task', not '" + section + "'");
  spec_hooks().validators[section] = std::move(validator);
}

}  // namespace peftlab
