#include "core/text_tables.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/errors.h"

namespace peftlab {

namespace fs = std::filesystem;

void require_regular_file(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) input_error(path.string(), "no such file");
  if (fs::is_directory(status)) input_error(path.string(), "is a folder, not a file");
  if (!fs::is_regular_file(status))
    input_error(path.string(), "not a regular file (a FIFO, socket or device cannot be read as data)");
}

std::string read_text_file(const fs::path& path) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) input_error(path.string(), "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) input_error(path.string(), "cannot read file");
  return ss.str();
}

namespace {

constexpr const char* kBom = "\xEF\xBB\xBF";

std::string without_bom(std::string bytes) {
  if (bytes.compare(0, 3, kBom) == 0) bytes.erase(0, 3);
  return bytes;
}

void strip_cr(std::string& line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
}

// One raw record of a delimited file: its cells and the line it starts on.
struct RawRow {
  std::vector<std::string> cells;
  long line;
};

std::vector<RawRow> split_tsv(const std::string& bytes) {
  std::vector<RawRow> rows;
  size_t start = 0;
  long line = 1;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string text = bytes.substr(start, end - start);
    strip_cr(text);
    RawRow row{{}, line};
    size_t field_start = 0;
    while (true) {
      size_t tab = text.find('\t', field_start);
      if (tab == std::string::npos) {
        row.cells.push_back(text.substr(field_start));
        break;
      }
      row.cells.push_back(text.substr(field_start, tab - field_start));
      field_start = tab + 1;
    }
    rows.push_back(std::move(row));
    start = end + 1;
    ++line;
  }
  return rows;
}

std::vector<RawRow> split_csv(const std::string& bytes, const std::string& file) {
  std::vector<RawRow> rows;
  RawRow row{{}, 1};
  std::string cell;
  bool in_quotes = false, cell_was_quoted = false;
  long line = 1, quote_line = 0;
  auto end_cell = [&] {
    row.cells.push_back(std::move(cell));
    cell.clear();
    cell_was_quoted = false;
  };
  auto end_row = [&] {
    end_cell();
    rows.push_back(std::move(row));
    row = RawRow{{}, line};
  };
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < bytes.size() && bytes[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"') {
      if (!cell.empty() || cell_was_quoted)
        throw InputError(file, "a quote inside an unquoted CSV field (quote the whole field and double inner quotes)", line);
      in_quotes = cell_was_quoted = true;
      quote_line = line;
    } else if (c == ',') {
      end_cell();
    } else if (c == '\n') {
      if (!cell.empty() && cell.back() == '\r' && !cell_was_quoted) cell.pop_back();
      ++line;
      end_row();
    } else if (c == '\r' && cell_was_quoted) {
      // "\r\n" after a closing quote
    } else {
      if (cell_was_quoted) throw InputError(file, "text after the closing quote of a CSV field", line);
      cell += c;
    }
  }
  if (in_quotes) throw InputError(file, "a quoted CSV field is never closed", quote_line);
  if (!cell.empty() || cell_was_quoted || !row.cells.empty()) end_row();
  return rows;
}

bool blank(const RawRow& row) { return row.cells.size() == 1 && row.cells[0].empty(); }

// Offset of the first byte of `text` that is not part of well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or npos.
size_t invalid_utf8_at(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = s[i];
    size_t length = 0;
    unsigned low = 0x80, high = 0xBF;  // the range of the second byte
    if (c < 0x80) length = 1;
    else if (c >= 0xC2 && c <= 0xDF) length = 2;
    else if (c >= 0xE0 && c <= 0xEF) length = 3, low = c == 0xE0 ? 0xA0 : 0x80, high = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) length = 4, low = c == 0xF0 ? 0x90 : 0x80, high = c == 0xF4 ? 0x8F : 0xBF;
    else return i;
    if (i + length > n) return i;
    for (size_t k = 1; k < length; ++k) {
      const unsigned b = s[i + k];
      if (k == 1 ? (b < low || b > high) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += length;
  }
  return std::string::npos;
}

// Text cells must be UTF-8 (the JSON readers refuse anything else too): the tokenizer would otherwise see
// bytes it cannot map to the text the user meant.
void check_utf8(const RawRow& row, const std::string& file) {
  for (size_t c = 0; c < row.cells.size(); ++c) {
    const size_t at = invalid_utf8_at(row.cells[c]);
    if (at != std::string::npos)
      throw InputError(file, fmt::format("invalid UTF-8 in column {} (byte 0x{:02X} at offset {} of the field)", c + 1,
                                         static_cast<unsigned char>(row.cells[c][at]), at),
                       row.line);
  }
}

TextTable assemble(std::vector<RawRow> raw, const std::string& file, bool has_header, size_t expected_columns) {
  while (!raw.empty() && blank(raw.back())) raw.pop_back();  // trailing blank lines
  if (raw.empty()) input_error(file, "empty file: no rows");
  for (const auto& row : raw) check_utf8(row, file);
  TextTable table;
  table.file = file;
  size_t first = 0;
  if (has_header) {
    table.header = std::move(raw[0].cells);
    first = 1;
  }
  size_t width = expected_columns;
  if (width == 0) width = has_header ? table.header.size() : raw[0].cells.size();
  if (has_header && table.header.size() != width)
    throw InputError(file, fmt::format("the header has {} columns, expected {}", table.header.size(), width), 1);
  if (first >= raw.size()) input_error(file, "no rows after the header");
  for (size_t i = first; i < raw.size(); ++i) {
    if (raw[i].cells.size() != width)
      throw InputError(file, fmt::format("row has {} columns, expected {}", raw[i].cells.size(), width), raw[i].line);
    table.rows.push_back(std::move(raw[i].cells));
    table.lines.push_back(raw[i].line);
  }
  return table;
}

// Line (1-based) of byte offset `offset` in `bytes`.
long line_of_offset(const std::string& bytes, size_t offset) {
  offset = std::min(offset, bytes.size());
  long line = 1;
  for (size_t i = 0; i < offset; ++i)
    if (bytes[i] == '\n') ++line;
  return line;
}

// Calls visit(i) for each byte of `bytes` outside JSON strings (a string's opening quote included, its
// contents and closing quote skipped); stops at the first i for which visit returns true and returns it.
template <typename Visit>
size_t scan_outside_strings(const std::string& bytes, Visit visit) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (visit(i)) return i;
    if (bytes[i] != '"') continue;
    for (++i; i < bytes.size() && bytes[i] != '"'; ++i)
      if (bytes[i] == '\\') ++i;
  }
  return std::string::npos;
}

// Byte offsets where each element of the top-level JSON array starts (the array has already parsed).
std::vector<size_t> top_level_element_offsets(const std::string& bytes) {
  std::vector<size_t> offsets;
  int depth = 0;
  bool expect_element = false;
  scan_outside_strings(bytes, [&](size_t i) {
    const char c = bytes[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') return false;
    if (depth == 1 && expect_element && c != ']') {
      offsets.push_back(i);
      expect_element = false;
    }
    if (c == '[' || c == '{') {
      if (++depth == 1) expect_element = true;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_element = true;
    }
    return false;
  });
  return offsets;
}

// Byte offset of the first occurrence of `token` outside JSON strings (npos when none).
size_t offset_outside_strings(const std::string& bytes, const std::string& token) {
  if (token.empty()) return std::string::npos;
  return scan_outside_strings(bytes, [&](size_t i) { return bytes[i] != '"' && bytes.compare(i, token.size(), token) == 0; });
}

// nlohmann throws parse_error for bad syntax (with the byte where it stopped) and out_of_range for a number
// too large for a double ("number overflow parsing '1e400'", no position: the number is found in the text).
[[noreturn]] void json_parse_error(const std::string& file, const std::string& bytes,
                                   const nlohmann::json::exception& e, long base_line) {
  const std::string what = e.what();
  const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&e);
  // nlohmann's messages start "[json.exception.<kind>.<id>] "; a parse error's goes on "parse error at line L,
  // column C: <detail>".
  auto bracket = what.find("] ");
  std::string detail = bracket == std::string::npos ? what : what.substr(bracket + 2);
  if (auto colon = detail.find(": "); parse != nullptr && colon != std::string::npos) detail = detail.substr(colon + 2);
  long line = base_line;
  if (line <= 0) {
    size_t offset = 0;
    if (parse != nullptr) {
      offset = parse->byte > 0 ? parse->byte - 1 : 0;
    } else if (auto open = what.find('\''), close = what.rfind('\''); open != std::string::npos && close > open) {
      offset = offset_outside_strings(bytes, what.substr(open + 1, close - open - 1));
    }
    line = line_of_offset(bytes, offset);
  }
  throw InputError(file, "invalid JSON: " + detail, line);
}

}  // namespace

TextTable read_header(const fs::path& path, const std::string& format) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) input_error(path.string(), "cannot open file");
  std::string line;
  std::getline(in, line);  // a header longer than a line of the file is not a header
  TextTable table;
  table.file = path.string();
  line = without_bom(line);
  strip_cr(line);
  if (line.empty()) return table;
  try {
    auto rows = format == "csv" ? split_csv(line + "\n", path.string()) : split_tsv(line + "\n");
    if (!rows.empty()) table.header = rows.front().cells;
  } catch (const InputError&) {  // a quoted header cell spanning lines: left to the full read
  }
  return table;
}

size_t TextTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string known;
  for (const auto& h : header) known += (known.empty() ? "" : ", ") + h;
  input_error(file, "no column '{}' (columns: {})", name, header.empty() ? "the file has no header" : known);
}

double TextTable::number(size_t row, size_t col) const {
  const std::string& text = rows.at(row).at(col);
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  bool trailing_space_only = end != nullptr && std::string(end).find_first_not_of(" \t") == std::string::npos;
  if (text.empty() || end == text.c_str() || !trailing_space_only || errno == ERANGE || !std::isfinite(value))
    throw InputError(file, fmt::format("'{}' is not a number (column {})", text, col + 1), lines.at(row));
  return value;
}

TextTable read_tsv(const fs::path& path, bool has_header, size_t expected_columns) {
  std::string bytes = without_bom(read_text_file(path));
  return assemble(split_tsv(bytes), path.string(), has_header, expected_columns);
}

TextTable read_csv(const fs::path& path, bool has_header, size_t expected_columns) {
  std::string bytes = without_bom(read_text_file(path));
  return assemble(split_csv(bytes, path.string()), path.string(), has_header, expected_columns);
}

std::string JsonRecords::string_field(size_t i, const std::string& key) const {
  const auto& record = records.at(i);
  auto it = record.find(key);
  if (it == record.end()) throw InputError(file, fmt::format("record {} has no field '{}'", i + 1, key), lines.at(i));
  if (!it->is_string())
    throw InputError(file, fmt::format("record {}: field '{}' is not a string", i + 1, key), lines.at(i));
  return it->get<std::string>();
}

std::string JsonRecords::scalar_field(size_t i, const std::string& key) const {
  const auto& record = records.at(i);
  auto it = record.find(key);
  if (it == record.end()) throw InputError(file, fmt::format("record {} has no field '{}'", i + 1, key), lines.at(i));
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  throw InputError(file, fmt::format("record {}: field '{}' is not a string, number or boolean", i + 1, key), lines.at(i));
}

JsonRecords read_json_array(const fs::path& path) {
  std::string file = path.string();
  std::string bytes = without_bom(read_text_file(path));
  if (bytes.find_first_not_of(" \t\r\n") == std::string::npos) input_error(file, "empty file: no records");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& e) {
    json_parse_error(file, bytes, e, 0);
  }
  if (!doc.is_array()) input_error(file, "expected a JSON array of records, got a JSON {}", doc.type_name());
  if (doc.empty()) input_error(file, "the JSON array holds no records");
  JsonRecords out;
  out.file = file;
  std::vector<size_t> offsets = top_level_element_offsets(bytes);
  // One pass to turn offsets into lines.
  long line = 1;
  size_t pos = 0;
  for (size_t i = 0; i < doc.size(); ++i) {
    size_t target = i < offsets.size() ? offsets[i] : pos;
    for (; pos < target; ++pos)
      if (bytes[pos] == '\n') ++line;
    if (!doc[i].is_object()) throw InputError(file, fmt::format("record {} is not a JSON object", i + 1), line);
    out.records.push_back(std::move(doc[i]));
    out.lines.push_back(line);
  }
  return out;
}

JsonRecords read_jsonl(const fs::path& path) {
  std::string file = path.string();
  std::string bytes = without_bom(read_text_file(path));
  JsonRecords out;
  out.file = file;
  std::istringstream in(bytes);
  std::string text;
  long line = 0;
  while (std::getline(in, text)) {
    ++line;
    strip_cr(text);
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      json_parse_error(file, bytes, e, line);
    }
    if (!record.is_object()) throw InputError(file, "expected a JSON object on this line", line);
    out.records.push_back(std::move(record));
    out.lines.push_back(line);
  }
  if (out.records.empty()) input_error(file, "empty file: no records");
  return out;
}

}  // namespace peftlab
