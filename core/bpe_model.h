// Byte-pair encoding over a vocabulary and ranked merges, as Hugging Face's BPE model does it: a word starts as
// its characters (or, for characters outside the vocabulary, the <0xNN> tokens of their bytes with
// byte fallback, else the unknown token), then the adjacent pair of lowest merge rank is merged, leftmost
// first, until no pair has a merge. With merge_by_joined_rank, a pair's rank is that of the token it joins
// into (tiktoken's rule).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/token_model.h"

namespace peftlab {

struct BpeOptions {
  std::string unk_token;       // empty: none (unknown characters are dropped)
  bool fuse_unk = false;       // consecutive unknown characters give one unknown token
  bool byte_fallback = false;  // unknown characters as their bytes' <0xNN> tokens
  bool ignore_merges = false;  // a word that is itself in the vocabulary is that token
  // tiktoken's rule instead of a merge list: two tokens merge when the token they join into is in the
  // vocabulary, whose id is its rank.
  bool merge_by_joined_rank = false;
  std::string continuing_subword_prefix, end_of_word_suffix;
};

class BpeModel : public TokenModel {
 public:
  using Vocab = std::unordered_map<std::string, int>;
  // The merge of the pair (left id, right id): its rank and the id of the merged token.
  struct Merge {
    int rank;
    int id;
  };
  using MergeTable = std::unordered_map<uint64_t, Merge>;
  static uint64_t pair_key(int left, int right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  // `merges` in rank order. Throws std::invalid_argument naming the first merge whose parts or result are
  // not in the vocabulary (1-based position in `what`).
  BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);
  BpeModel(Vocab vocab, MergeTable merges, BpeOptions options);

  void tokenize(const std::string& word, std::vector<int>& ids) const override;
  int token_id(const std::string& token) const override;
  const std::string* token_of(int id) const override;
  int size() const override { return static_cast<int>(tokens_.size()); }

 private:
  void index_tokens();
  // The merge of two adjacent tokens, or null.
  const Merge* find_merge(int left, int right, Merge& joined) const;

  Vocab vocab_;
  std::vector<const std::string*> tokens_;  // by id (keys of vocab_); null where no entry has the id
  MergeTable merges_;
  BpeOptions options_;
  int unk_id_ = -1;
  int byte_ids_[256];  // <0xNN> ids, -1 where missing
};

}  // namespace peftlab
