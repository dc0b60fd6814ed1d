#include "tasks/template.h"

#include <fmt/format.h>

#include "core/errors.h"

namespace peftlab {

namespace {

std::string trimmed(const std::string& s) {
  const char* space = " \t";
  size_t begin = s.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

const nlohmann::json* find_field(const nlohmann::json& record, const std::string& path) {
  if (record.is_object()) {
    auto it = record.find(path);
    if (it != record.end()) return &*it;
  }
  const nlohmann::json* at = &record;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string segment = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (at->is_object()) {
      auto it = at->find(segment);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array() && all_digits(segment) && segment.size() < 10) {
      size_t index = std::stoul(segment);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
    if (dot == std::string::npos) return at;
    start = dot + 1;
  }
}

std::optional<std::string> scalar_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return std::nullopt;
}

TextTemplate::TextTemplate(const std::string& text, std::string file, long line, std::string key)
    : text_(text), file_(std::move(file)), key_(std::move(key)), line_(line) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      pieces_.push_back({false, text.substr(pos)});
      break;
    }
    if (open > pos) pieces_.push_back({false, text.substr(pos, open - pos)});
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos)
      throw InputError(file_, fmt::format("{}: '{{{{' at character {} has no closing '}}}}'", key_, open + 1), line_);
    std::string inner = trimmed(text.substr(open + 2, close - open - 2));
    if (inner.size() >= 2 && inner.front() == '"' && inner.back() == '"') {
      pieces_.push_back({false, inner.substr(1, inner.size() - 2)});
    } else if (inner.empty()) {
      throw InputError(file_, fmt::format("{}: empty reference '{{{{}}}}' at character {}", key_, open + 1), line_);
    } else {
      pieces_.push_back({true, inner});
    }
    pos = close + 2;
  }
}

std::string TextTemplate::where() const { return fmt::format("{}:{} ({})", file_, line_, key_); }

std::vector<std::string> TextTemplate::fields() const {
  std::vector<std::string> out;
  for (const auto& p : pieces_)
    if (p.is_field) out.push_back(p.text);
  return out;
}

const nlohmann::json& TextTemplate::lookup(const nlohmann::json& record, const std::string& path,
                                           const std::string& data_file, long data_line) const {
  const nlohmann::json* value = find_field(record, path);
  if (value == nullptr) {
    std::string keys;
    if (record.is_object())
      for (const auto& [k, v] : record.items()) keys += (keys.empty() ? "" : ", ") + k;
    throw InputError(data_file, fmt::format("no field '{}' (read by {}); the record has: {}", path, where(), keys),
                     data_line);
  }
  return *value;
}

std::string TextTemplate::render(const nlohmann::json& record, const std::string& data_file, long data_line) const {
  std::string out;
  for (const auto& p : pieces_) {
    if (!p.is_field) {
      out += p.text;
      continue;
    }
    const nlohmann::json& value = lookup(record, p.text, data_file, data_line);
    auto text = scalar_text(value);
    if (!text)
      throw InputError(data_file, fmt::format("field '{}' (read by {}) is {}, not a string, number or boolean", p.text,
                                              where(), value.type_name()),
                       data_line);
    out += *text;
  }
  return out;
}

std::optional<std::vector<std::string>> TextTemplate::render_list(const nlohmann::json& record,
                                                                  const std::string& data_file, long data_line) const {
  if (pieces_.size() != 1 || !pieces_[0].is_field) return std::nullopt;
  const nlohmann::json& value = lookup(record, pieces_[0].text, data_file, data_line);
  if (!value.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : value) {
    auto text = scalar_text(item);
    if (!text)
      throw InputError(data_file, fmt::format("field '{}' (read by {}) holds a {}, not text", pieces_[0].text, where(),
                                              item.type_name()),
                       data_line);
    out.push_back(*text);
  }
  return out;
}

}  // namespace peftlab
