// WordPiece (BERT): a word becomes the longest vocabulary entry that starts it, then the longest
// "##"-prefixed entry that starts the rest, and so on; a word with a part no entry matches, or longer
// than max_input_chars_per_word characters, becomes the unknown token.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "core/token_model.h"

namespace peftlab {

class WordPieceModel : public TokenModel {
 public:
  // Throws std::invalid_argument when `unk_token` is not in the vocabulary.
  WordPieceModel(std::unordered_map<std::string, int> vocab, std::string unk_token,
                 std::string continuing_subword_prefix = "##", int max_input_chars_per_word = 100);

  void tokenize(const std::string& word, std::vector<int>& ids) const override;
  int token_id(const std::string& token) const override;
  const std::string* token_of(int id) const override;
  int size() const override { return static_cast<int>(tokens_.size()); }
  const std::string& continuing_subword_prefix() const { return prefix_; }

 private:
  std::unordered_map<std::string, int> vocab_;
  std::vector<const std::string*> tokens_;  // by id (keys of vocab_); null where no entry has the id
  std::string prefix_;
  int max_chars_;
  int unk_id_;
};

}  // namespace peftlab
