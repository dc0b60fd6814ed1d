// Added tokens (special tokens like <|endoftext|> or [CLS], and extra vocabulary) found in text before the
// pipeline's normalizer and pre-tokenizer see it: at each position the longest token that starts there,
// earliest position first.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "core/text_normalizers.h"
#include "core/tokenizer_config.h"

namespace peftlab {

class AddedTokens {
 public:
  // A piece of text, or an added token (id >= 0).
  struct Segment {
    std::string text;
    int id = -1;
  };

  AddedTokens() = default;
  // Tokens matched in normalized text have their content normalized with `normalizer` (may be null) first.
  AddedTokens(std::vector<AddedToken> tokens, const TextNormalizer* normalizer);
  // Patterns point into the token list: moved, never copied.
  AddedTokens(const AddedTokens&) = delete;
  AddedTokens& operator=(const AddedTokens&) = delete;
  AddedTokens(AddedTokens&&) = default;
  AddedTokens& operator=(AddedTokens&&) = default;

  // Cuts `text` at the tokens matched in raw text (normalized == false) or in normalized text.
  std::vector<Segment> split_raw(const std::string& text) const { return split(text, raw_); }
  std::vector<Segment> split_normalized(const std::string& text) const { return split(text, normalized_); }

  const AddedToken* find(int id) const;
  int id_of(const std::string& content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

 private:
  struct Pattern {
    std::string text;
    const AddedToken* token;
  };
  // Patterns by their first byte.
  using PatternIndex = std::unordered_map<unsigned char, std::vector<Pattern>>;
  std::vector<Segment> split(const std::string& text, const PatternIndex& patterns) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int, size_t> by_id_;
  std::unordered_map<std::string, int> by_content_;
  PatternIndex raw_, normalized_;
};

}  // namespace peftlab
