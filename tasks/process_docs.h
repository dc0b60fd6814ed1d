// Named record processors of task files (`process_docs: NAME`): what a template cannot say, done in C++ the way
// lm-evaluation-harness' task utilities do it, adding fields to each record before the templates read it.
//
//   hellaswag   adds `query` (activity_label + ": " + ctx_a + " " + ctx_b capitalised, cleaned), `choices` (the
//               cleaned endings) and `gold` (label as an index). Cleaning: strip, " [title]" -> ". ", every
//               "[...]" removed, then "  " -> " " (one left-to-right pass).
//   winogrande  adds `contexts` (the sentence up to its "_", followed by option1, and by option2),
//               `continuation` (the rest of the sentence after "_", stripped) and `gold` (answer "1"/"2" -> 0/1):
//               the option fills the blank and the rest of the sentence is what is scored.
//
// Capitalising and stripping act on ASCII (the sets are English); other bytes are kept as they are.
#pragma once

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/errors.h"

namespace peftlab::process_docs {

inline std::string strip(const std::string& text) {
  const char* space = " \t\n\r\f\v";
  const size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(space) - begin + 1);
}

// Python's str.replace: non-overlapping occurrences, left to right, in one pass.
inline std::string replace_all(const std::string& text, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  for (size_t at; (at = text.find(from, pos)) != std::string::npos; pos = at + from.size())
    out += text.substr(pos, at - pos) + to;
  return out + text.substr(pos);
}

// Python's str.capitalize on ASCII: the first character upper case, the rest lower case.
inline std::string capitalize(std::string text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) continue;
    text[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return text;
}

// HellaSwag's cleaning of WikiHow artefacts.
inline std::string hellaswag_clean(const std::string& raw) {
  std::string text = replace_all(strip(raw), " [title]", ". ");
  // Without "[...]": as the regular expression \[.*?\] (shortest match, "." not matching a newline).
  std::string kept;
  for (size_t pos = 0; pos < text.size();) {
    const size_t open = text.find('[', pos);
    if (open == std::string::npos) {
      kept += text.substr(pos);
      break;
    }
    const size_t close = text.find_first_of("]\n", open + 1);
    if (close == std::string::npos || text[close] == '\n') {  // no match from this "[": keep it
      kept += text.substr(pos, open + 1 - pos);
      pos = open + 1;
      continue;
    }
    kept += text.substr(pos, open - pos);
    pos = close + 1;
  }
  return replace_all(kept, "  ", " ");
}

inline const nlohmann::json& field(const nlohmann::json& record, const char* name, const std::string& file, long line) {
  if (!record.is_object() || !record.contains(name))
    throw InputError(file, fmt::format("the record has no field '{}'", name), line);
  return record.at(name);
}

inline std::string text_field(const nlohmann::json& record, const char* name, const std::string& file, long line) {
  const nlohmann::json& value = field(record, name, file, line);
  if (!value.is_string()) throw InputError(file, fmt::format("field '{}' is not a string", name), line);
  return value.get<std::string>();
}

// An index field written as a number or as text ("3"); empty text (an unlabelled test record) gives no gold.
inline void add_gold(nlohmann::json& record, const nlohmann::json& value, int offset, const std::string& file, long line) {
  const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.empty()) return;
  char* end = nullptr;
  const long index = std::strtol(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size()) throw InputError(file, fmt::format("'{}' is not an answer index", text), line);
  record["gold"] = index - offset;
}

inline void hellaswag(nlohmann::json& record, const std::string& file, long line) {
  const std::string context = text_field(record, "ctx_a", file, line) + " " + capitalize(text_field(record, "ctx_b", file, line));
  record["query"] = hellaswag_clean(text_field(record, "activity_label", file, line) + ": " + context);
  const nlohmann::json& endings = field(record, "endings", file, line);
  if (!endings.is_array()) throw InputError(file, "field 'endings' is not a list", line);
  std::vector<std::string> choices;
  for (const auto& ending : endings) {
    if (!ending.is_string()) throw InputError(file, "field 'endings' holds a non-string", line);
    choices.push_back(hellaswag_clean(ending.get<std::string>()));
  }
  record["choices"] = choices;
  add_gold(record, field(record, "label", file, line), 0, file, line);
}

inline void winogrande(nlohmann::json& record, const std::string& file, long line) {
  const std::string sentence = text_field(record, "sentence", file, line);
  const size_t blank = sentence.find('_');
  if (blank == std::string::npos) throw InputError(file, "field 'sentence' has no blank '_'", line);
  const std::string before = sentence.substr(0, blank);
  record["contexts"] = std::vector<std::string>{before + text_field(record, "option1", file, line),
                                                before + text_field(record, "option2", file, line)};
  record["continuation"] = strip(sentence.substr(blank + 1));
  add_gold(record, field(record, "answer", file, line), 1, file, line);
}

inline const std::vector<std::string>& names() {
  static const std::vector<std::string> known = {"hellaswag", "winogrande"};
  return known;
}

// The fields processor `name` adds ("" adds none).
inline std::vector<std::string> added_fields(const std::string& name) {
  if (name == "hellaswag") return {"query", "choices", "gold"};
  if (name == "winogrande") return {"contexts", "continuation", "gold"};
  return {};
}

// Applies processor `name` (one of names()) to `record`, read from `file` at `line`.
inline void apply(const std::string& name, nlohmann::json& record, const std::string& file, long line) {
  if (name == "hellaswag") hellaswag(record, file, line);
  else if (name == "winogrande") winogrande(record, file, line);
}

}  // namespace peftlab::process_docs
