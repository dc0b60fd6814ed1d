#include "tasks/classification.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/errors.h"

namespace peftlab {

void truncate_longest_first(std::vector<std::vector<int32_t>>& segments, int64_t budget) {
  budget = std::max<int64_t>(budget, 0);
  int64_t total = 0;
  for (const auto& s : segments) total += int64_t(s.size());
  while (total > budget) {
    auto longest = std::max_element(segments.begin(), segments.end(),
                                    [](const auto& a, const auto& b) { return a.size() < b.size(); });
    longest->pop_back();
    --total;
  }
}

std::vector<int32_t> join_and_truncate(std::vector<std::vector<int32_t>> segments,
                                       const std::vector<int32_t>& separator, int32_t bos, int64_t max_len) {
  // A tokenizer without BOS (Qwen2's) starts the sequence with the first segment.
  const int64_t fixed = (bos >= 0 ? 1 : 0) + int64_t(separator.size()) * (int64_t(segments.size()) - 1);
  truncate_longest_first(segments, max_len - fixed);
  std::vector<int32_t> ids;
  if (bos >= 0) ids.push_back(bos);
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) ids.insert(ids.end(), separator.begin(), separator.end());
    ids.insert(ids.end(), segments[i].begin(), segments[i].end());
  }
  if (int64_t(ids.size()) > max_len) ids.resize(size_t(max_len));  // only when the separators alone overflow
  return ids;
}

Encoding template_and_truncate(std::vector<std::vector<int32_t>> segments, const SpecialTokenTemplate& tokens,
                               int64_t max_len) {
  const auto& items = segments.size() >= 2 ? tokens.pair : tokens.single;
  int64_t specials = 0;
  for (const auto& item : items) specials += int64_t(item.special_ids.size());
  truncate_longest_first(segments, max_len - specials);
  Encoding out;
  for (const auto& item : items) {
    if (!item.special_ids.empty()) {
      out.ids.insert(out.ids.end(), item.special_ids.begin(), item.special_ids.end());
      out.type_ids.insert(out.type_ids.end(), item.special_ids.size(), item.type_id);
    } else if (size_t(item.sequence) < segments.size()) {
      const auto& text = segments[size_t(item.sequence)];
      out.ids.insert(out.ids.end(), text.begin(), text.end());
      out.type_ids.insert(out.type_ids.end(), text.size(), item.type_id);
    }
  }
  if (int64_t(out.ids.size()) > max_len) {  // only when the special tokens alone overflow
    out.ids.resize(size_t(max_len));
    out.type_ids.resize(size_t(max_len));
  }
  return out;
}

std::vector<TokenizedExample> SentenceTask::tokenize(const std::string& split, const std::vector<Example>& examples,
                                                     const Tokenizer& tokenizer) const {
  std::vector<int> sep = tokenizer.encode("\n");
  std::vector<int32_t> separator(sep.begin(), sep.end());
  std::vector<TokenizedExample> out;
  out.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    std::vector<std::vector<int32_t>> segments;
    for (const auto& text : e.texts) {
      std::vector<int> ids = tokenizer.encode(text);
      segments.emplace_back(ids.begin(), ids.end());
    }
    TokenizedExample t;
    if (template_inputs_) {
      Encoding encoded = template_and_truncate(std::move(segments), tokenizer.special_template(), max_seq_len_);
      t.input_ids.assign(encoded.ids.begin(), encoded.ids.end());
      t.token_type_ids.assign(encoded.type_ids.begin(), encoded.type_ids.end());
    } else {
      t.input_ids = join_and_truncate(std::move(segments), separator, tokenizer.bos_id(), max_seq_len_);
    }
    t.class_label = e.label;
    t.target = e.target;
    t.example_index = int64_t(i);
    out.push_back(std::move(t));
  }
  return out;
}

int64_t SentenceTask::label_index(const std::string& text, const std::string& file, long line) const {
  for (size_t i = 0; i < labels_.size(); ++i)
    if (labels_[i] == text) return int64_t(i);
  throw InputError(file, fmt::format("unknown label '{}' (labels: {})", text, fmt::join(labels_, ", ")), line);
}

std::vector<Example> SentenceTask::examples_from_table(const TextTable& table, const std::vector<size_t>& text_columns,
                                                       long label_column, long id_column) const {
  std::vector<Example> out;
  out.reserve(table.size());
  for (size_t r = 0; r < table.size(); ++r) {
    Example e;
    for (size_t c : text_columns) e.texts.push_back(table.rows[r][c]);
    e.line = table.lines[r];
    e.id = id_column >= 0 ? table.rows[r][size_t(id_column)] : std::to_string(r);
    if (label_column >= 0) {
      if (regression_) e.target = table.number(r, size_t(label_column));
      else e.label = label_index(table.rows[r][size_t(label_column)], table.file, table.lines[r]);
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string SentenceTask::sentence_format_options() const {
  const char* input = template_inputs_ ? "tokenizer template with token types, longest_first"
                                       : "bos+texts joined by newline, longest_first";
  return common_format_options() + fmt::format(";input={};labels={};regression={}", input, fmt::join(labels_, ","),
                                               regression_);
}

}  // namespace peftlab
