#include "core/bpe_model.h"

#include <fmt/format.h>

#include <queue>
#include <stdexcept>

#include "core/unicode_text.h"

namespace peftlab {

BpeModel::BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  const size_t prefix = options_.continuing_subword_prefix.size();
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto l = vocab_.find(left), r = vocab_.find(right);
    // The merged token drops the right part's continuing-subword prefix.
    const std::string merged = left + (prefix > 0 && right.compare(0, prefix, options_.continuing_subword_prefix) == 0
                                           ? right.substr(prefix)
                                           : right);
    auto m = vocab_.find(merged);
    if (l == vocab_.end() || r == vocab_.end() || m == vocab_.end())
      throw std::invalid_argument(fmt::format("merge {} ('{} {}') joins tokens that are not in the vocabulary",
                                              rank + 1, left, right));
    merges_.emplace(pair_key(l->second, r->second), Merge{static_cast<int>(rank), m->second});
  }
  index_tokens();
}

BpeModel::BpeModel(Vocab vocab, MergeTable merges, BpeOptions options)
    : vocab_(std::move(vocab)), merges_(std::move(merges)), options_(std::move(options)) {
  index_tokens();
}

const BpeModel::Merge* BpeModel::find_merge(int left, int right, Merge& joined) const {
  if (options_.merge_by_joined_rank) {
    const int id = token_id(*tokens_[static_cast<size_t>(left)] + *tokens_[static_cast<size_t>(right)]);
    if (id < 0) return nullptr;
    joined = Merge{id, id};
    return &joined;
  }
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::index_tokens() {
  int size = 0;
  for (const auto& [token, id] : vocab_) {
    if (id < 0) throw std::invalid_argument(fmt::format("token '{}' has a negative id", token));
    size = std::max(size, id + 1);
  }
  tokens_.assign(static_cast<size_t>(size), nullptr);
  for (const auto& [token, id] : vocab_) tokens_[static_cast<size_t>(id)] = &token;
  if (!options_.unk_token.empty()) unk_id_ = token_id(options_.unk_token);
  for (int b = 0; b < 256; ++b) byte_ids_[b] = token_id(fmt::format("<0x{:02X}>", b));
}

int BpeModel::token_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::token_of(int id) const {
  return id < 0 || id >= size() ? nullptr : tokens_[static_cast<size_t>(id)];
}

void BpeModel::tokenize(const std::string& word, std::vector<int>& ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (int id = token_id(word); id >= 0) {
      ids.push_back(id);
      return;
    }
  }
  // The word's symbols as a doubly linked list over a vector; a merged-away symbol has id -1.
  struct Symbol {
    int id, prev, next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int id) {
    const int at = static_cast<int>(symbols.size());
    symbols.push_back({id, at - 1, -1});
    if (at > 0) symbols[static_cast<size_t>(at - 1)].next = at;
  };
  bool last_unknown = false;
  for (size_t i = 0; i < word.size();) {
    const size_t n = std::min(utf8_sequence_length(static_cast<unsigned char>(word[i])), word.size() - i);
    std::string unit = word.substr(i, n);
    if (i > 0 && !options_.continuing_subword_prefix.empty()) unit.insert(0, options_.continuing_subword_prefix);
    if (i + n == word.size()) unit += options_.end_of_word_suffix;
    const int id = token_id(unit);
    if (id >= 0) {
      add(id);
      last_unknown = false;
    } else {
      bool all_bytes = options_.byte_fallback;
      for (size_t k = i; all_bytes && k < i + n; ++k) all_bytes = byte_ids_[static_cast<unsigned char>(word[k])] >= 0;
      if (all_bytes) {
        for (size_t k = i; k < i + n; ++k) add(byte_ids_[static_cast<unsigned char>(word[k])]);
        last_unknown = false;
      } else if (unk_id_ >= 0) {
        if (!(options_.fuse_unk && last_unknown)) add(unk_id_);
        last_unknown = true;
      }
    }
    i += n;
  }

  // Candidate merges, lowest rank first, then leftmost. An entry is stale when its symbols changed since.
  struct Candidate {
    int rank, pos, id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int pos) {
    if (pos < 0) return;
    const int next = symbols[static_cast<size_t>(pos)].next;
    if (next < 0) return;
    Merge joined;
    if (const Merge* m = find_merge(symbols[static_cast<size_t>(pos)].id, symbols[static_cast<size_t>(next)].id, joined))
      queue.push({m->rank, pos, m->id});
  };
  for (int pos = 0; pos + 1 < static_cast<int>(symbols.size()); ++pos) consider(pos);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    Merge joined;
    const Merge* m = find_merge(left.id, right.id, joined);
    if (m == nullptr || m->id != top.id || m->rank != top.rank) continue;
    left.id = top.id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  for (int pos = symbols.empty() ? -1 : 0; pos >= 0; pos = symbols[static_cast<size_t>(pos)].next)
    ids.push_back(symbols[static_cast<size_t>(pos)].id);
}

}  // namespace peftlab
