// The bodies of the reader fuzz targets, shared by the libFuzzer entry points (fuzz/fuzz_<reader>.cpp) and
// the replay test that runs in the normal build (tests/fuzz/fuzz_replay_test.cpp). Header-only, so that each
// fuzz target compiles only the bodies it calls and the test build needs no extra sources.
//
// Contract of every body: it feeds the input to the reader (through a real file in the scratch folder) and
//   - returns an Outcome: how many readings were accepted, and the message of each InputError (the expected
//     answer to bad input);
//   - throws InvariantBroken when a reading was accepted but its result breaks a property the reader
//     promises (a table with a row of the wrong width, a config that does not validate, ...);
//   - lets anything else escape (another exception, a sanitizer report, a signal): that is a finding.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"
#include "fuzz/fuzz_support.h"

#if defined(PEFTLAB_FUZZ_LLAMA2C) || defined(PEFTLAB_FUZZ_ALL_BODIES)
#include "core/llama2c.h"
#include "core/families/llama.h"
#endif
#if defined(PEFTLAB_FUZZ_SPEC) || defined(PEFTLAB_FUZZ_ALL_BODIES)
#include <yaml-cpp/yaml.h>

#include "experiments/spec.h"
#endif
#if defined(PEFTLAB_FUZZ_TABLES) || defined(PEFTLAB_FUZZ_ALL_BODIES)
#include "core/text_tables.h"
#endif
#if defined(PEFTLAB_FUZZ_RUN_FILE) || defined(PEFTLAB_FUZZ_ALL_BODIES)
#include <set>

#include "core/recorder.h"
#endif
#if defined(PEFTLAB_FUZZ_TOKENIZER) || defined(PEFTLAB_FUZZ_ALL_BODIES)
#include "core/tokenizer.h"
#endif

namespace peftlab::fuzz {

// An accepted input whose result breaks a promise of the reader.
class InvariantBroken : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

inline void require(bool condition, const std::string& what) {
  if (!condition) throw InvariantBroken(what);
}

struct Outcome {
  int accepted = 0;                 // readings that returned a value (and kept every invariant)
  std::vector<std::string> errors;  // InputError messages of the readings that refused the input
};

// Runs `read` once, counting an InputError as a refusal.
template <typename Read>
void attempt(Outcome& outcome, Read&& read) {
  try {
    read();
    ++outcome.accepted;
  } catch (const InputError& e) {
    outcome.errors.push_back(e.what());
  }
}

// What the libFuzzer entry points return. With PEFTLAB_FUZZ_VERBOSE=1 in the environment, each outcome is
// printed (e.g. `PEFTLAB_FUZZ_VERBOSE=1 build-fuzz/fuzz/fuzz_spec fuzz/regressions/fuzz_spec/*`).
inline int report(const Outcome& outcome) {
  static const bool verbose = std::getenv("PEFTLAB_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "accepted %d time(s)\n", outcome.accepted);
    for (const auto& e : outcome.errors) std::fprintf(stderr, "InputError: %s\n", e.c_str());
  }
  return 0;
}

inline std::filesystem::path put_input(const std::uint8_t* data, std::size_t size, const std::string& name) {
  const auto path = scratch_dir() / name;
  write_bytes(path, data, size);
  return path;
}

// ---------------------------------------------------------------------------------------------------------
// llama2.c checkpoints
#if defined(PEFTLAB_FUZZ_LLAMA2C) || defined(PEFTLAB_FUZZ_ALL_BODIES)

// read_llama2c_config, then load_llama2c. An accepted header validates and accounts for every byte of the
// file; the loaded model has exactly that shape, its first embedding value is the file's first weight, and
// it runs a forward pass.
inline Outcome llama2c_body(const std::uint8_t* data, std::size_t size) {
  Outcome outcome;
  const auto path = put_input(data, size, "input.bin");
  attempt(outcome, [&] {
    // A llama2.c file is the llama family's own format, so its config type is known here.
    const auto config = read_llama2c_config(path);
    const auto& c = dynamic_cast<const LlamaConfig&>(*config);
    c.validate("fuzz: accepted config");
    require(c.rope_interleaved, "llama2.c config must use interleaved rotary pairs");
    const auto floats = static_cast<std::size_t>(c.parameter_count() + c.max_position_embeddings * c.attention_head_dim());
    require(size == 28 + 4 * floats, "accepted header does not account for the file size exactly");

    Backbone model = load_llama2c(path);
    int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    require(parameters == c.parameter_count(), "loaded model has another parameter count than its config");
    const auto w = model->named_parameters()["embed_tokens.weight"];
    require(w.size(0) == c.vocab_size && w.size(1) == c.hidden_size, "embedding shape differs from the config");
    float first = 0;
    std::memcpy(&first, data + 28, sizeof first);
    const float loaded = w[0][0].item<float>();
    require(std::memcmp(&first, &loaded, sizeof first) == 0, "first embedding value is not the file's first weight");

    const int64_t steps = std::min<int64_t>(2, c.max_position_embeddings);
    torch::NoGradGuard no_grad;
    auto logits = model->forward(torch::zeros({1, steps}, torch::kLong));
    require(logits.sizes() == torch::IntArrayRef({1, steps, c.vocab_size}), "forward pass has the wrong shape");
  });
  return outcome;
}

#endif
// ---------------------------------------------------------------------------------------------------------
// Experiment specs
#if defined(PEFTLAB_FUZZ_SPEC) || defined(PEFTLAB_FUZZ_ALL_BODIES)

// The folder a fuzzed spec is written to, with a valid partial spec that inputs may include.
inline const std::filesystem::path& spec_folder() {
  static const std::filesystem::path folder = [] {
    auto f = scratch_dir() / "spec";
    std::filesystem::create_directories(f);
    const std::string base =
        "train: {lr: 0.001, batch_size: 4}\nseeds: [0, 1]\nmethods:\n  - name: lora\n    rank: 4\n";
    write_bytes(f / "base.yaml", reinterpret_cast<const std::uint8_t*>(base.data()), base.size());
    return f;
  }();
  return folder;
}

// What a spec that load_spec accepted promises. The sections were checked by load_spec, so they read without
// error, and what they read survives to_node() (the runner records to_node's output and `peftlab export`
// reads it back).
inline void check_loaded_spec(const Spec& spec) {
  static const std::regex name_pattern("[A-Za-z0-9._+=,-]+");
  require(std::regex_match(spec.name, name_pattern), "accepted spec name is not a folder name");
  require(!spec.methods.empty() && !spec.tasks.empty(), "accepted spec without methods or tasks");
  require(!spec.seeds.empty(), "accepted spec without seeds");
  for (std::size_t i = 0; i < spec.seeds.size(); ++i) {
    require(spec.seeds[i] >= 0, "accepted a negative seed");
    for (std::size_t j = 0; j < i; ++j) require(spec.seeds[i] != spec.seeds[j], "accepted a repeated seed");
  }
  require(!spec.output_dir.empty(), "accepted an empty output folder");
  for (const auto& axis : spec.sweep) require(!axis.values.empty(), "accepted a sweep axis without values");

  auto same_after_round_trip = [](YAML::Node section, const char* name, auto read) {
    Options first(section, "fuzz", name);
    const auto value = read(first);
    Options second(to_node(value), "fuzz", name);
    const auto again = read(second);
    require(YAML::Dump(to_node(value)) == YAML::Dump(to_node(again)),
            std::string(name) + ": section does not read back the same after to_node");
  };
  same_after_round_trip(spec.model, "model", [](Options& o) { return read_model(o); });
  same_after_round_trip(spec.train, "train", [](Options& o) { return read_train(o); });
  same_after_round_trip(spec.eval, "eval", [](Options& o) { return read_eval(o); });
  same_after_round_trip(spec.record, "record", [](Options& o) { return read_record(o); });
}

// The input is the spec's text; the lines after a line "#--set" are `--set` overrides (one per line).
// Inputs that include anything outside the scratch folder (a path with '/', '\', or a variable) are skipped:
// the fuzzer must not read the machine's files. An accepted spec has a valid name, non-empty method and task
// lists, distinct non-negative seeds, and sections that read again to the same values after a round trip
// through to_node().
inline Outcome spec_body(const std::uint8_t* data, std::size_t size) {
  Outcome outcome;
  std::string text(reinterpret_cast<const char*>(data), size);
  if (text.find("include") != std::string::npos && text.find_first_of("/\\$") != std::string::npos) return outcome;
  std::vector<std::string> overrides;
  const std::string marker = "#--set\n";
  std::size_t at = text.rfind(marker, 0) == 0 ? 0 : text.find("\n" + marker);
  if (at != std::string::npos) {
    std::string rest = text.substr(text.find(marker, at) + marker.size());
    text.resize(at == 0 ? 0 : at + 1);
    std::size_t start = 0;
    while (start < rest.size()) {
      std::size_t end = rest.find('\n', start);
      if (end == std::string::npos) end = rest.size();
      overrides.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
  }
  const auto path = spec_folder() / "spec.yaml";
  write_bytes(path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  attempt(outcome, [&] {
    Spec spec = load_spec(path, overrides);
    try {
      check_loaded_spec(spec);
    } catch (const InputError& e) {  // what load_spec accepted must read again without complaint
      throw InvariantBroken(std::string("an accepted spec is refused when read again: ") + e.what());
    }
  });
  return outcome;
}

#endif
// ---------------------------------------------------------------------------------------------------------
// Text tables
#if defined(PEFTLAB_FUZZ_TABLES) || defined(PEFTLAB_FUZZ_ALL_BODIES)

// The configurations every table input is read with: header or not, width free (0) or fixed.
struct TableMode {
  bool has_header;
  std::size_t expected_columns;
};
inline constexpr TableMode kTableModes[] = {{false, 0}, {true, 0}, {true, 2}, {false, 3}};

// Properties of any table a reader accepts.
inline void check_table(const TextTable& t, const TableMode& mode) {
  require(t.rows.size() == t.lines.size(), "rows and lines differ in count");
  require(!t.rows.empty(), "accepted a table without rows");
  require(mode.has_header == !t.header.empty(), "header present without has_header (or missing with it)");
  const std::size_t width = mode.expected_columns ? mode.expected_columns
                            : mode.has_header     ? t.header.size()
                                                  : t.rows[0].size();
  if (mode.has_header) require(t.header.size() == width, "header width differs from the expected width");
  long previous = mode.has_header ? 1 : 0;
  for (std::size_t i = 0; i < t.rows.size(); ++i) {
    require(t.rows[i].size() == width, "a row has another width than the table");
    require(t.lines[i] > previous, "row lines are not increasing");
    previous = t.lines[i];
  }
  for (std::size_t c = 0; c < t.header.size(); ++c) require(t.column(t.header[c]) <= c, "column() missed a header name");
  for (std::size_t r = 0; r < t.rows.size(); ++r)
    for (std::size_t c = 0; c < width; ++c) {
      try {
        require(std::isfinite(t.number(r, c)), "number() returned a value that is not finite");
      } catch (const InputError& e) {
        require(e.line() == t.lines[r], "number() error names another line than the row's");
      }
    }
}

inline std::vector<std::vector<std::string>> all_rows(const TextTable& t) {
  std::vector<std::vector<std::string>> rows;
  if (!t.header.empty()) rows.push_back(t.header);
  rows.insert(rows.end(), t.rows.begin(), t.rows.end());
  return rows;
}

// Writes `rows` as `format` ("tsv" or "csv", every CSV cell quoted) and reads it back with the same mode.
inline void check_round_trip(const TextTable& t, const TableMode& mode, const std::string& format) {
  std::string out = "\xEF\xBB\xBF";  // a BOM first, so that a cell starting with one survives the reader dropping it
  for (const auto& row : all_rows(t)) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) out += format == "tsv" ? "\t" : ",";
      if (format == "tsv") {
        out += row[c];
      } else {
        out += '"';
        for (char ch : row[c]) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        out += '"';
      }
    }
    out += '\n';
  }
  if (format == "tsv")
    for (const auto& row : all_rows(t))
      if (row.back().size() && row.back().back() == '\r') return;  // a TSV line cannot end in a kept '\r'
  const auto path = put_input(reinterpret_cast<const std::uint8_t*>(out.data()), out.size(), "again." + format);
  TextTable again = format == "tsv" ? read_tsv(path, mode.has_header, mode.expected_columns)
                                    : read_csv(path, mode.has_header, mode.expected_columns);
  require(again.header == t.header && again.rows == t.rows, format + ": table does not survive a write and read");
}

inline Outcome table_body(const std::uint8_t* data, std::size_t size, const std::string& format) {
  Outcome outcome;
  const auto path = put_input(data, size, "input." + format);
  for (const TableMode& mode : kTableModes)
    attempt(outcome, [&] {
      TextTable t = format == "tsv" ? read_tsv(path, mode.has_header, mode.expected_columns)
                                    : read_csv(path, mode.has_header, mode.expected_columns);
      check_table(t, mode);
      check_round_trip(t, mode, format);
    });
  return outcome;
}

inline Outcome tsv_body(const std::uint8_t* data, std::size_t size) { return table_body(data, size, "tsv"); }
inline Outcome csv_body(const std::uint8_t* data, std::size_t size) { return table_body(data, size, "csv"); }

// Properties of accepted JSON records: objects, one line each, lines within the file and in order
// (strictly for JSON Lines), and field access that either answers or refuses with an InputError.
inline void check_records(const JsonRecords& r, const std::uint8_t* data, std::size_t size, bool lines_strict) {
  require(r.records.size() == r.lines.size() && !r.records.empty(), "records and lines differ in count");
  const long line_count = 1 + static_cast<long>(std::count(data, data + size, '\n'));
  long previous = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    require(r.records[i].is_object(), "a record is not an object");
    require(r.lines[i] >= 1 && r.lines[i] <= line_count, "a record's line is outside the file");
    require(lines_strict ? r.lines[i] > previous : r.lines[i] >= previous, "record lines are out of order");
    previous = r.lines[i];
    for (const auto& [key, value] : r.records[i].items()) {
      try {
        std::string text = r.scalar_field(i, key);
        require(value.is_primitive() && !value.is_null(), "scalar_field answered for a list, object or null");
        if (value.is_string()) require(r.string_field(i, key) == text, "string_field and scalar_field differ");
      } catch (const InputError& e) {
        require(!value.is_primitive() || value.is_null(), "scalar_field refused a scalar");
        require(e.line() == r.lines[i], "field error names another line than the record's");
      }
    }
  }
}

inline Outcome json_body(const std::uint8_t* data, std::size_t size) {
  Outcome outcome;
  const auto path = put_input(data, size, "input.json");
  attempt(outcome, [&] { check_records(read_json_array(path), data, size, false); });
  return outcome;
}

inline Outcome jsonl_body(const std::uint8_t* data, std::size_t size) {
  Outcome outcome;
  const auto path = put_input(data, size, "input.jsonl");
  attempt(outcome, [&] { check_records(read_jsonl(path), data, size, true); });
  return outcome;
}

#endif

// ---------------------------------------------------------------------------------------------------------
// Run files (run.h5)
#if defined(PEFTLAB_FUZZ_RUN_FILE) || defined(PEFTLAB_FUZZ_ALL_BODIES)

// RunFileReader as eval, export and --resume use it: open (which checks the checksummed header before HDF5
// parses anything), then every attribute, the status, and every dataset of /train, /eval/<split> and
// /decomposition/<layer>. An accepted file has a known status, and each group's 1-D datasets are as long as
// its `step` dataset.
inline Outcome run_file_body(const std::uint8_t* data, std::size_t size) {
  Outcome outcome;
  const auto path = put_input(data, size, "run.h5").string();
  attempt(outcome, [&] {
    RunFileReader reader(path);
    for (const auto& name : reader.attribute_names()) reader.attribute(name);
    static const std::set<std::string> statuses = {"running", "completed", "failed", "interrupted", "diverged"};
    require(statuses.count(reader.status()) == 1, "status is not one a run file can have");
    auto check_group = [&](const std::string& group) {
      if (!reader.exists(group + "/step")) return;
      const size_t steps = reader.read_ints(group + "/step").size();
      for (const auto& name : reader.children(group)) {
        if (name == "m_row" || name == "m_col") {
          size_t rows = 0, cols = 0;
          reader.read_matrix(group + "/" + name, &rows, &cols);
          require(rows == steps, group + "/" + name + " has another number of rows than steps");
        } else if (name != "step") {
          require(reader.read_doubles(group + "/" + name).size() == steps, group + "/" + name + " is not one row per step");
        }
      }
    };
    check_group("/train");
    for (const char* parent : {"/eval", "/decomposition"})
      if (reader.exists(parent))
        for (const auto& child : reader.children(parent)) check_group(std::string(parent) + "/" + child);
  });
  return outcome;
}

#endif

// ---------------------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json
#if defined(PEFTLAB_FUZZ_TOKENIZER) || defined(PEFTLAB_FUZZ_ALL_BODIES)

// load_tokenizer on the input as tokenizer.json. An accepted tokenizer encodes a few texts (special-token
// strings, bytes of every kind) into ids inside its vocabulary, each with a piece, which decode; its one-text
// and pair templates give one type id per id.
inline Outcome tokenizer_json_body(const std::uint8_t* data, std::size_t size) {
  Outcome outcome;
  const auto path = put_input(data, size, "tokenizer.json");
  attempt(outcome, [&] {
    auto tok = load_tokenizer(path);
    const std::string texts[] = {"Hello world! It's 2024.", " <s>a</s> [CLS] <|endoftext|>", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\n\t  x", "", "\xFF\xFE"};
    for (const auto& text : texts) {
      const std::vector<int> ids = tok->encode(text, true, true);
      for (int id : ids) {
        require(id >= 0 && id < tok->vocab_size(), "an id outside the vocabulary");
        (void)tok->piece(id);
      }
      (void)tok->decode(ids);
      const Encoding single = tok->encode_with_specials(text);
      require(single.ids.size() == single.type_ids.size(), "one-text template: ids and type ids differ in length");
      const Encoding pair = tok->encode_pair(text, "b");
      require(pair.ids.size() == pair.type_ids.size(), "pair template: ids and type ids differ in length");
    }
  });
  return outcome;
}

#endif

}  // namespace peftlab::fuzz
