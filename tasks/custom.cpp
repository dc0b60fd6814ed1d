// User-defined classification or regression tasks from YAML alone (task name `custom`):
//
//   task:
//     name: custom
//     format: tsv              # tsv (GLUE-style, no quoting) | csv (RFC 4180) | jsonl | json (array of records)
//     train: ${data}/my/train.tsv
//     dev: ${data}/my/dev.tsv  # at least one of train / dev / test
//     test: ${data}/my/test.tsv
//     header: true             # tsv/csv: the first row names the columns (default true)
//     columns: [id, text, label]   # tsv/csv without a header: the column names
//     text_fields: [text]      # one or more
//     label_field: label       # absent from a test file is fine
//     labels: [negative, positive]  # class names as written in the file, in class-index order
//     # or: regression: true
//     metrics: [accuracy, f1]  # default: accuracy (classification) or pearson, spearman (regression)
//     headline: accuracy       # default: the first metric
//     id_field: id             # optional, for predictions files (default: row number)
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/errors.h"
#include "core/suggest.h"
#include "core/text_tables.h"
#include "tasks/builtin.h"
#include "tasks/classification.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

class CustomTask : public SentenceTask {
 public:
  explicit CustomTask(Options& options) {
    name_ = "custom";
    YAML::Emitter written;
    written << YAML::Flow << options.node();
    written_options_ = written.c_str();
    read_common_options(options, 128);
    format_ = options.require<std::string>("format");
    const std::vector<std::string> formats = {"tsv", "csv", "jsonl", "json"};
    if (std::find(formats.begin(), formats.end(), format_) == formats.end())
      throw InputError(options.file(), fmt::format("{}.format: {}", options.path(),
                                                   unknown_name_message("format", format_, formats)),
                       Options::line_of(options.raw("format")));
    for (const char* split : {"train", "dev", "test"})
      if (auto path = options.get_optional<std::string>(split)) split_files_.emplace_back(split, fs::path(*path));
    if (split_files_.empty())
      throw InputError(options.file(), fmt::format("{}: give at least one of train, dev, test (file paths)", options.path()),
                       options.line());
    header_ = options.get<bool>("header", true);
    columns_ = string_list_option(options, "columns", {});
    bool delimited = format_ == "tsv" || format_ == "csv";
    if (delimited && !header_ && columns_.empty())
      throw InputError(options.file(), fmt::format("{}: a file without a header needs `columns: [names]`", options.path()),
                       options.line());
    text_fields_ = string_list_option(options, "text_fields", {});
    if (text_fields_.empty())
      throw InputError(options.file(), fmt::format("{}: missing required key 'text_fields'", options.path()),
                       options.line());
    label_field_ = options.require<std::string>("label_field");
    id_field_ = options.get<std::string>("id_field", "");
    regression_ = options.get<bool>("regression", false);
    labels_ = string_list_option(options, "labels", {});
    if (regression_ == !labels_.empty())
      throw InputError(options.file(),
                       fmt::format("{}: give either `labels: [names]` (classification) or `regression: true`",
                                   options.path()),
                       options.line());
    if (!labels_.empty()) {
      const long labels_line = Options::line_of(options.raw("labels"));
      if (labels_.size() < 2)
        throw InputError(options.file(), fmt::format("{}.labels: a classification needs at least two labels, got {}",
                                                     options.path(), labels_.size()),
                         labels_line);
      for (size_t i = 1; i < labels_.size(); ++i)
        if (std::find(labels_.begin(), labels_.begin() + long(i), labels_[i]) != labels_.begin() + long(i))
          throw InputError(options.file(), fmt::format("{}.labels: '{}' is listed twice", options.path(), labels_[i]),
                           labels_line);
    }
    auto metric_list = string_list_option(options, "metrics", regression_ ? std::vector<std::string>{"pearson", "spearman"}
                                                                          : std::vector<std::string>{"accuracy"});
    long metrics_line = Options::line_of(options.raw("metrics"));
    for (const auto& m : metric_list) metrics_.push_back(metric_by_name(m, options.file(), metrics_line));
    if (metrics_.empty())
      throw InputError(options.file(), fmt::format("{}.metrics: name at least one", options.path()), metrics_line);
    headline_ = options.get<std::string>("headline", metrics_.front().name);
    if (std::find(metric_list.begin(), metric_list.end(), headline_) == metric_list.end())
      throw InputError(options.file(), fmt::format("{}.headline: {}", options.path(),
                                                   unknown_name_message("metric", headline_, metric_list)),
                       Options::line_of(options.raw("headline")));
  }

  int version() const override { return 1; }
  std::vector<std::string> splits() const override {
    std::vector<std::string> out;
    for (const auto& [split, path] : split_files_) out.push_back(split);
    return out;
  }
  std::vector<std::string> eval_splits() const override {
    for (const auto& [split, path] : split_files_)
      if (split == "dev") return {"dev"};
    return {split_files_.front().first};  // no dev file: score the first given split
  }
  std::vector<fs::path> files(const std::string& split) const override {
    check_split(split);
    for (const auto& [s, path] : split_files_)
      if (s == split) return {path};
    return {};
  }
  std::string format_options() const override {
    // Every option as written (columns, header, id_field, ...): any change is a new cache key.
    return sentence_format_options() + fmt::format(";format={};text_fields={};label_field={};options={}", format_,
                                                   fmt::join(text_fields_, ","), label_field_, written_options_);
  }

  void check_files() const override {
    for (const auto& [split, path] : split_files_) {
      require_regular_file(path);
      if (!(format_ == "tsv" || format_ == "csv") || !header_) continue;
      TextTable header = read_header(path, format_);
      if (header.header.empty()) continue;  // an empty file: the full read says so
      for (const auto& f : text_fields_) header.column(f);
      if (split != "test") header.column(label_field_);
    }
  }

  std::vector<Example> load(const std::string& split) const override {
    fs::path path = files(split).at(0);
    TextTable table = format_ == "tsv" || format_ == "csv" ? read_delimited(path) : table_from_records(path);
    std::vector<size_t> text_columns;
    for (const auto& f : text_fields_) text_columns.push_back(table.column(f));
    long label = -1;
    for (size_t c = 0; c < table.header.size(); ++c)
      if (table.header[c] == label_field_) label = long(c);
    if (label < 0 && split != "test") table.column(label_field_);  // throws, naming the file and its columns
    // Ids matter for predictions (test); a split without the id column numbers its rows.
    long id = -1;
    for (size_t c = 0; c < table.header.size(); ++c)
      if (!id_field_.empty() && table.header[c] == id_field_) id = long(c);
    if (id < 0 && !id_field_.empty() && split == "test") table.column(id_field_);  // throws, naming the file
    return limit(split, examples_from_table(table, text_columns, label, id));
  }

 private:
  TextTable read_delimited(const fs::path& path) const {
    size_t width = header_ ? 0 : columns_.size();
    TextTable table = format_ == "tsv" ? read_tsv(path, header_, width) : read_csv(path, header_, width);
    if (!header_) table.header = columns_;
    return table;
  }

  // JSON records as a table of the fields the task uses (label only when present in a record of a test file).
  TextTable table_from_records(const fs::path& path) const {
    JsonRecords records = format_ == "jsonl" ? read_jsonl(path) : read_json_array(path);
    std::vector<std::string> fields = text_fields_;
    if (!id_field_.empty()) fields.push_back(id_field_);
    bool has_label = records.records.front().contains(label_field_);
    if (has_label) fields.push_back(label_field_);
    TextTable table;
    table.file = path.string();
    table.header = fields;
    for (size_t i = 0; i < records.size(); ++i) {
      std::vector<std::string> row;
      for (const auto& f : fields) row.push_back(records.scalar_field(i, f));
      table.rows.push_back(std::move(row));
      table.lines.push_back(records.lines[i]);
    }
    return table;
  }

  std::string format_;
  std::vector<std::pair<std::string, fs::path>> split_files_;
  bool header_ = true;
  std::vector<std::string> columns_, text_fields_;
  std::string label_field_, id_field_;
  std::string written_options_;
};

}  // namespace

void builtin::add_custom_task(std::map<std::string, TaskFactory>& registry) {
  registry["custom"] = [](Options& options) { return std::make_unique<CustomTask>(options); };
}

}  // namespace peftlab
