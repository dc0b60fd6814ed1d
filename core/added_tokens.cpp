#include "core/added_tokens.h"

#include <algorithm>

#include "core/unicode_text.h"

namespace peftlab {

AddedTokens::AddedTokens(std::vector<AddedToken> tokens, const TextNormalizer* normalizer) : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_id_[tokens_[i].id] = i;
    by_content_[tokens_[i].content] = tokens_[i].id;
  }
  for (const auto& token : tokens_) {
    if (token.content.empty()) continue;
    if (token.normalized) {
      std::string text = normalizer != nullptr ? normalizer->normalize(token.content) : token.content;
      if (!text.empty()) normalized_[static_cast<unsigned char>(text[0])].push_back({text, &token});
    } else {
      raw_[static_cast<unsigned char>(token.content[0])].push_back({token.content, &token});
    }
  }
  // Longest first, so that the first pattern that matches at a position is the longest there.
  for (auto* index : {&raw_, &normalized_})
    for (auto& [byte, patterns] : *index)
      std::stable_sort(patterns.begin(), patterns.end(),
                       [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
}

const AddedToken* AddedTokens::find(int id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

int AddedTokens::id_of(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? -1 : it->second;
}

namespace {

// The code point that ends just before byte `at`, or that starts at `at`.
char32_t char_before(const std::string& text, size_t at) {
  size_t start = at;
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start > 0) --start;
  const auto cps = code_points(text.substr(start, at - start));
  return cps.empty() ? 0 : cps.back();
}

char32_t char_at(const std::string& text, size_t at) {
  const auto cps = code_points(text.substr(at, utf8_sequence_length(static_cast<unsigned char>(text[at]))));
  return cps.empty() ? 0 : cps.front();
}

bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric_char(c); }

}  // namespace

std::vector<AddedTokens::Segment> AddedTokens::split(const std::string& text, const PatternIndex& patterns) const {
  std::vector<Segment> out;
  if (patterns.empty()) {
    if (!text.empty()) out.push_back({text, -1});
    return out;
  }
  size_t last = 0;  // end of the last match
  for (size_t at = 0; at < text.size(); ++at) {
    auto candidates = patterns.find(static_cast<unsigned char>(text[at]));
    if (candidates == patterns.end()) continue;
    for (const Pattern& p : candidates->second) {
      if (text.compare(at, p.text.size(), p.text) != 0) continue;
      size_t begin = at, end = at + p.text.size();
      if (p.token->single_word) {
        const bool start_ok = begin == 0 || !is_word_char(char_before(text, begin));
        const bool end_ok = end == text.size() || !is_word_char(char_at(text, end));
        if (!start_ok || !end_ok) continue;
      }
      if (p.token->lstrip)
        while (begin > last && is_whitespace_char(char_before(text, begin)))
          begin -= utf8_of(char_before(text, begin)).size();
      if (p.token->rstrip)
        while (end < text.size() && is_whitespace_char(char_at(text, end)))
          end += utf8_sequence_length(static_cast<unsigned char>(text[end]));
      if (begin > last) out.push_back({text.substr(last, begin - last), -1});
      out.push_back({text.substr(begin, end - begin), p.token->id});
      last = end;
      at = end - 1;
      break;
    }
  }
  if (last < text.size()) out.push_back({text.substr(last), -1});
  return out;
}

}  // namespace peftlab
