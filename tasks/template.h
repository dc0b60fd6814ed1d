// Templates of task files: literal text with `{{ field }}` references, rendered against one record of a
// split (a JSON object; a row of a TSV/CSV file is an object of its column names).
//
//   "Question: {{question}}\nAnswer:"      -> "Question: Who wrote Hamlet?\nAnswer:"
//
// The syntax, all of it:
//   * `{{` opens a reference and the next `}}` closes it; the text between, with spaces and tabs around it
//     removed, is a field path. Everything outside references is literal, `}}` included.
//   * A field path names a key of the record as written (a column "#1 String", a key "a.b"); when there is no
//     such key it is read as a dotted path: `choices.text` is the key `text` of the object under `choices`,
//     and a segment of digits indexes a list (`choices.text.0`).
//   * `{{"..."}}` (double quotes inside the braces) is literal text: `{{"{{"}}` writes `{{`.
//   * A string value is inserted as is, a number or boolean as JSON writes it (`1`, `0.5`, `true`); null, a
//     list or an object is an error, except where a whole template is one reference to a list (choices).
//   * A `{{` without its `}}` or an empty reference is an error naming the task file and line.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace peftlab {

class TextTemplate {
 public:
  TextTemplate() = default;
  // Parses `text`, written in `file` at `line` under `key` (for messages); InputError when malformed.
  TextTemplate(const std::string& text, std::string file, long line, std::string key);

  // The text for `record` (read from `data_file` at `data_line`): InputError naming the data file and line,
  // and the template's own place, when a field is missing or not a scalar.
  std::string render(const nlohmann::json& record, const std::string& data_file, long data_line) const;
  // A template that is exactly one reference to a list of scalars: that list as text; otherwise nullopt.
  std::optional<std::vector<std::string>> render_list(const nlohmann::json& record, const std::string& data_file,
                                                      long data_line) const;

  // The field paths the template reads, in order.
  std::vector<std::string> fields() const;
  bool empty() const { return pieces_.empty(); }
  const std::string& text() const { return text_; }
  // "file:line (key)": where the template was written.
  std::string where() const;
  const std::string& file() const { return file_; }
  long line() const { return line_; }
  const std::string& key() const { return key_; }

 private:
  struct Piece {
    bool is_field = false;
    std::string text;  // literal text, or the field path
  };
  const nlohmann::json& lookup(const nlohmann::json& record, const std::string& path, const std::string& data_file,
                               long data_line) const;
  std::vector<Piece> pieces_;
  std::string text_, file_, key_;
  long line_ = 0;
};

// The value at field path `path` of `record` (see above), or nullptr.
const nlohmann::json* find_field(const nlohmann::json& record, const std::string& path);
// A scalar as template text: a string as is, a number or boolean as JSON writes it; nullopt otherwise.
std::optional<std::string> scalar_text(const nlohmann::json& value);

}  // namespace peftlab
