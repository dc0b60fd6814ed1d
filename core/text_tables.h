// Readers for the text tables datasets come in: GLUE-style TSV (no quoting at all: a quote is literal text),
// CSV (RFC 4180 quoting), a JSON array of records (the LLM-Adapters layout) and JSON Lines. Every problem is an
// InputError naming the file and, where there is one, the line: a row with a missing or extra column, a
// number that does not parse, invalid JSON, an empty file.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace peftlab {

// Rows of string cells, every row as wide as the header (or as the first row when there is no header).
struct TextTable {
  std::string file;                        // the path, for messages
  std::vector<std::string> header;         // empty when the file has none
  std::vector<std::vector<std::string>> rows;
  std::vector<long> lines;                 // 1-based line where each row starts

  size_t size() const { return rows.size(); }
  // Index of the column named `name`; InputError naming the file and listing the columns when absent.
  size_t column(const std::string& name) const;
  // The cell parsed as a number; InputError naming file:line when it is not one.
  double number(size_t row, size_t column) const;
};

// GLUE TSV: fields split on tabs only, quotes kept as text. A UTF-8 byte-order mark is dropped, "\r\n" line
// ends are accepted, the last line may lack its newline, and blank lines at the very end are ignored.
// With `has_header` the first line names the columns. `expected_columns` (0: take the header's or first row's
// width) fixes the width; a row of another width is an error naming its line.
TextTable read_tsv(const std::filesystem::path& path, bool has_header, size_t expected_columns = 0);

// CSV with RFC 4180 quoting: fields in double quotes may hold commas, newlines and doubled quotes ("").
TextTable read_csv(const std::filesystem::path& path, bool has_header, size_t expected_columns = 0);

// Records (JSON objects) from a file, with the line each record starts on.
struct JsonRecords {
  std::string file;
  std::vector<nlohmann::json> records;
  std::vector<long> lines;
  size_t size() const { return records.size(); }
  // The string field `key` of record `i`; InputError naming file:line when missing or not a string.
  std::string string_field(size_t i, const std::string& key) const;
  // Any scalar field as text (a string as is, a number or boolean as JSON writes it).
  std::string scalar_field(size_t i, const std::string& key) const;
};

// A JSON array of objects, e.g. LLM-Adapters' dataset/<name>/test.json.
JsonRecords read_json_array(const std::filesystem::path& path);
// JSON Lines: one object per non-blank line.
JsonRecords read_jsonl(const std::filesystem::path& path);

// The whole file as bytes; InputError when it cannot be read. (Shared by the readers above.)
std::string read_text_file(const std::filesystem::path& path);

// Just the header row of a delimited file ("tsv" or "csv"), for checks before a run reads the whole file:
// a table with no rows and an empty header when the first line is empty or cannot be split alone.
TextTable read_header(const std::filesystem::path& path, const std::string& format);

// InputError unless `path` is a regular file: a folder reads as empty and a FIFO blocks its reader (and with
// it the handling of SIGINT/SIGTERM), so data files are checked before they are opened or hashed.
void require_regular_file(const std::filesystem::path& path);

}  // namespace peftlab
