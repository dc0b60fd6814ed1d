#include "core/wordpiece_model.h"

#include <stdexcept>

#include "core/unicode_text.h"

namespace peftlab {

WordPieceModel::WordPieceModel(std::unordered_map<std::string, int> vocab, std::string unk_token,
                               std::string continuing_subword_prefix, int max_input_chars_per_word)
    : vocab_(std::move(vocab)), prefix_(std::move(continuing_subword_prefix)), max_chars_(max_input_chars_per_word) {
  int size = 0;
  for (const auto& [token, id] : vocab_) {
    if (id < 0) throw std::invalid_argument("token '" + token + "' has a negative id");
    size = std::max(size, id + 1);
  }
  tokens_.assign(static_cast<size_t>(size), nullptr);
  for (const auto& [token, id] : vocab_) tokens_[static_cast<size_t>(id)] = &token;
  unk_id_ = token_id(unk_token);
  if (unk_id_ < 0) throw std::invalid_argument("the unknown token '" + unk_token + "' is not in the vocabulary");
}

int WordPieceModel::token_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* WordPieceModel::token_of(int id) const {
  return id < 0 || id >= size() ? nullptr : tokens_[static_cast<size_t>(id)];
}

void WordPieceModel::tokenize(const std::string& word, std::vector<int>& ids) const {
  // Byte offsets of the character boundaries.
  std::vector<size_t> bounds;
  for (size_t i = 0; i < word.size(); i += utf8_sequence_length(static_cast<unsigned char>(word[i]))) bounds.push_back(i);
  if (bounds.empty()) return;
  if (static_cast<int>(bounds.size()) > max_chars_) {
    ids.push_back(unk_id_);
    return;
  }
  bounds.push_back(word.size());
  std::vector<int> pieces;
  for (size_t start = 0; start + 1 < bounds.size();) {
    int found = -1;
    size_t end = bounds.size() - 1;
    for (; end > start; --end) {
      std::string candidate = word.substr(bounds[start], bounds[end] - bounds[start]);
      if (start > 0) candidate = prefix_ + candidate;
      found = token_id(candidate);
      if (found >= 0) break;
    }
    if (found < 0) {
      ids.push_back(unk_id_);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  ids.insert(ids.end(), pieces.begin(), pieces.end());
}

}  // namespace peftlab
