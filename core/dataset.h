// Tokenised examples, their on-disk cache, and the deterministic batcher.
//
// Tokenise once: a split is tokenised the first time it is needed and written to
// <cache folder>/<name>-<key prefix>.tok, where the key is the SHA-256 of everything that determines the
// tokens (the tokenizer model's checksum, the data files' checksums, the task's formatting options and
// version). A changed file changes the key, so a stale cache is never read. The cache folder is
// $PEFTLAB_CACHE, else ~/.cache/peftlab.
//
// Label conventions (Hugging Face's): `labels` are aligned with `input_ids`; the loss shifts them (logits at
// position t predict labels[t + 1]); -100 marks a position without loss.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace peftlab {

constexpr int32_t kIgnoreIndex = -100;

struct TokenizedExample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;  // token targets aligned with input_ids (-100: no loss); empty for classification
  int64_t class_label = -1;     // classification: class index; -1 when unlabelled (a test split)
  double target = 0.0;          // regression target (STS-B)
  int64_t example_index = 0;    // position of the example in its split (for predictions and submissions)
  int64_t byte_count = 0;       // causal LM blocks: UTF-8 bytes of the tokens the block predicts (bits per byte)
  // Segment of each token (0: first text, 1: second) for encoders with token type embeddings; empty: all 0.
  std::vector<int32_t> token_type_ids;
};

// What the batcher puts in `labels`.
enum class LabelKind {
  Class,   // (B) int64 class indices (-1 for unlabelled rows)
  Target,  // (B) float32 regression targets
  Tokens,  // (B, T) int64 token targets, -100 on padding and masked positions
};

// The cache folder: $PEFTLAB_CACHE, else ~/.cache/peftlab (else ./.peftlab-cache without a home).
std::filesystem::path default_cache_dir();

// Everything the cache key is made of, in a stable text form.
struct CacheKey {
  std::string name;                       // human-readable file-name prefix ("sst2-train")
  std::string tokenizer_checksum;         // Tokenizer::checksum()
  std::vector<std::string> file_checksums;
  std::string options;                    // the task's formatting options, version included
  std::string digest() const;             // SHA-256 hex of all of the above
};

// Reads the cached split for `key` from `cache_dir`, or runs `tokenize`, writes the result there (atomically:
// a temporary file renamed into place) and returns it. A cache file that is truncated or corrupt is
// tokenised again and overwritten. `cache_hit`, when given, says which happened.
std::vector<TokenizedExample> load_or_tokenize(const CacheKey& key, const std::filesystem::path& cache_dir,
                                               const std::function<std::vector<TokenizedExample>()>& tokenize,
                                               bool* cache_hit = nullptr);

// The cache file format, exposed for tests and tools.
void write_tokenized(const std::filesystem::path& path, const std::string& digest,
                     const std::vector<TokenizedExample>& examples);
// nullopt when the file is missing, has another digest, or is damaged.
std::optional<std::vector<TokenizedExample>> read_tokenized(const std::filesystem::path& path,
                                                            const std::string& digest);

struct Batch {
  torch::Tensor input_ids;       // (B, T) int64, right-padded with pad_id
  torch::Tensor attention_mask;  // (B, T) int64, 1 on real tokens
  torch::Tensor last_index;      // (B) int64, index of each row's last real token (sequence-classification head)
  torch::Tensor labels;          // see LabelKind
  torch::Tensor example_index;   // (B) int64, TokenizedExample::example_index
  torch::Tensor token_type_ids;  // (B, T) int64, 0 on padding; undefined when no example has any (decoders)
  int64_t size() const { return input_ids.size(0); }
};

// Rows [begin, end) of a batch (a data-parallel process's share), padding width unchanged.
Batch batch_rows(const Batch& batch, int64_t begin, int64_t end);

// Pads a list of examples into one batch (T = the longest row).
Batch collate(const std::vector<const TokenizedExample*>& rows, LabelKind kind, int64_t pad_id);

// A position in the stream of batches: the epoch and the index of the next example in that epoch's order.
struct DataPosition {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const DataPosition& o) const { return epoch == o.epoch && index == o.index; }
};

struct BatcherOptions {
  int64_t batch_size = 8;
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_last = false;  // drop an epoch's final short batch
  int64_t pad_id = 0;
  LabelKind label_kind = LabelKind::Class;
};

// Deterministic batches over a split: epoch e visits the examples in the order of
// torch::randperm(n, generator seeded with mix(seed, e)) (or in file order without shuffle). The order of
// an epoch depends only on (seed, epoch), so a run resumed at position() gives the same batches.
class Batcher {
 public:
  // Keeps a reference to `examples`: they must outlive the batcher.
  Batcher(const std::vector<TokenizedExample>& examples, BatcherOptions options);

  // The next batch; crosses into the next epoch when one ends (epochs never end for training loops;
  // use next_in_epoch() for one pass).
  Batch next();
  // The next batch of the current epoch, or nullopt at its end (the position then moves to the next epoch).
  std::optional<Batch> next_in_epoch();

  DataPosition position() const { return position_; }
  // Continues from `position` (as saved by a checkpoint); an index past the epoch's end is an error.
  void seek(DataPosition position);
  int64_t batches_per_epoch() const;
  const std::vector<int64_t>& epoch_order() const { return order_; }

 private:
  void prepare_epoch(int64_t epoch);
  Batch take(int64_t count);

  const std::vector<TokenizedExample>& examples_;
  BatcherOptions options_;
  DataPosition position_;
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace peftlab
