// The model of a tokenizer pipeline: the vocabulary, and how one pre-tokenized word becomes ids.
#pragma once

#include <string>
#include <vector>

namespace peftlab {

// Ids are below this bound (vocabularies have up to a few hundred thousand entries): an id read from a file
// sizes tables, so a larger one is refused as malformed.
constexpr int kMaxTokenId = 1 << 22;

class TokenModel {
 public:
  virtual ~TokenModel() = default;
  // Appends the ids of `word` to `ids`.
  virtual void tokenize(const std::string& word, std::vector<int>& ids) const = 0;
  // -1 when the vocabulary has no such entry.
  virtual int token_id(const std::string& token) const = 0;
  // Null when no entry has this id.
  virtual const std::string* token_of(int id) const = 0;
  // One more than the largest id.
  virtual int size() const = 0;
};

}  // namespace peftlab
