#include "core/dataset.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/checksum.h"
#include "core/errors.h"

namespace peftlab {

namespace fs = std::filesystem;

fs::path default_cache_dir() {
  if (const char* env = std::getenv("PEFTLAB_CACHE"); env != nullptr && *env != '\0') return fs::path(env);
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return fs::path(home) / ".cache" / "peftlab";
  return fs::path(".peftlab-cache");
}

std::string CacheKey::digest() const {
  // Length-prefixed fields, so that no two different keys serialise to the same text.
  std::string text = "peftlab-token-cache-v1\n";
  auto add = [&text](const std::string& field) { text += std::to_string(field.size()) + ":" + field + "\n"; };
  add(name);
  add(tokenizer_checksum);
  add(std::to_string(file_checksums.size()));
  for (const auto& c : file_checksums) add(c);
  add(options);
  return sha256_bytes(text);
}

// ---- cache file ------------------------------------------------------------------------------------------
// Layout (native little-endian): magic "PLTOK003", 64-byte hex digest, uint64 count, then per example:
// int64 example_index, int64 class_label, float64 target, int64 byte_count, uint32 n_ids, uint32 n_labels,
// uint32 n_types, int32 ids[n_ids], int32 labels[n_labels], int32 token_type_ids[n_types]; then the trailer "PLTOKEND" (its absence marks a truncated file).

namespace {

constexpr char kMagic[] = "PLTOK003";
constexpr char kTrailer[] = "PLTOKEND";

template <typename T>
void put(std::ostream& out, const T& value) {
  out.write(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
bool get(std::istream& in, T& value) {
  return static_cast<bool>(in.read(reinterpret_cast<char*>(&value), sizeof(T)));
}

bool get_ints(std::istream& in, std::vector<int32_t>& values, uint32_t n, uint64_t bytes_left) {
  if (uint64_t(n) * sizeof(int32_t) > bytes_left) return false;
  values.resize(n);
  return n == 0 || static_cast<bool>(in.read(reinterpret_cast<char*>(values.data()), n * sizeof(int32_t)));
}

}  // namespace

void write_tokenized(const fs::path& path, const std::string& digest, const std::vector<TokenizedExample>& examples) {
  std::ostringstream out;
  out.write(kMagic, 8);
  std::string padded = digest;
  padded.resize(64, ' ');
  out.write(padded.data(), 64);
  put(out, uint64_t(examples.size()));
  for (const auto& e : examples) {
    put(out, int64_t(e.example_index));
    put(out, int64_t(e.class_label));
    put(out, double(e.target));
    put(out, int64_t(e.byte_count));
    put(out, uint32_t(e.input_ids.size()));
    put(out, uint32_t(e.labels.size()));
    put(out, uint32_t(e.token_type_ids.size()));
    out.write(reinterpret_cast<const char*>(e.input_ids.data()), std::streamsize(e.input_ids.size() * sizeof(int32_t)));
    out.write(reinterpret_cast<const char*>(e.labels.data()), std::streamsize(e.labels.size() * sizeof(int32_t)));
    out.write(reinterpret_cast<const char*>(e.token_type_ids.data()),
              std::streamsize(e.token_type_ids.size() * sizeof(int32_t)));
  }
  out.write(kTrailer, 8);
  // Whole or absent, so that a concurrent run never reads half a file; the cache can be rebuilt, so no fsync.
  AtomicFileWriter file(path);
  file.write(out.str());
  file.commit(/*durable=*/false);
}

std::optional<std::vector<TokenizedExample>> read_tokenized(const fs::path& path, const std::string& digest) {
  std::error_code ec;
  uint64_t file_size = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  char magic[8];
  char stored_digest[64];
  std::string padded = digest;
  padded.resize(64, ' ');
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return std::nullopt;
  if (!in.read(stored_digest, 64) || std::string(stored_digest, 64) != padded) return std::nullopt;
  uint64_t count = 0;
  if (!get(in, count)) return std::nullopt;
  constexpr uint64_t kExampleHeader = 8 + 8 + 8 + 8 + 4 + 4 + 4;
  if (count > file_size / kExampleHeader) return std::nullopt;
  std::vector<TokenizedExample> examples(count);
  for (auto& e : examples) {
    uint32_t n_ids = 0, n_labels = 0, n_types = 0;
    int64_t index = 0, label = 0, bytes = 0;
    double target = 0;
    if (!get(in, index) || !get(in, label) || !get(in, target) || !get(in, bytes) || !get(in, n_ids) ||
        !get(in, n_labels) || !get(in, n_types))
      return std::nullopt;
    uint64_t left = file_size - uint64_t(in.tellg());
    if (!get_ints(in, e.input_ids, n_ids, left)) return std::nullopt;
    left = file_size - uint64_t(in.tellg());
    if (!get_ints(in, e.labels, n_labels, left)) return std::nullopt;
    left = file_size - uint64_t(in.tellg());
    if (!get_ints(in, e.token_type_ids, n_types, left)) return std::nullopt;
    e.example_index = index;
    e.class_label = label;
    e.target = target;
    e.byte_count = bytes;
  }
  char trailer[8];
  if (!in.read(trailer, 8) || std::memcmp(trailer, kTrailer, 8) != 0) return std::nullopt;
  if (in.peek() != std::char_traits<char>::eof()) return std::nullopt;
  return examples;
}

std::vector<TokenizedExample> load_or_tokenize(const CacheKey& key, const fs::path& cache_dir,
                                               const std::function<std::vector<TokenizedExample>()>& tokenize,
                                               bool* cache_hit) {
  std::string digest = key.digest();
  fs::path file = cache_dir / (key.name + "-" + digest.substr(0, 16) + ".tok");
  if (auto cached = read_tokenized(file, digest)) {
    if (cache_hit) *cache_hit = true;
    return std::move(*cached);
  }
  if (cache_hit) *cache_hit = false;
  std::vector<TokenizedExample> examples = tokenize();
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) input_error(cache_dir.string(), "cannot create the token cache folder: {}", ec.message());
  try {
    write_tokenized(file, digest, examples);
  } catch (const InputError& e) {
    input_error(file.string(), "cannot write the token cache file ({}; disk full? set PEFTLAB_CACHE elsewhere)",
                e.problem());
  }
  return examples;
}

// ---- batches ---------------------------------------------------------------------------------------------

Batch batch_rows(const Batch& batch, int64_t begin, int64_t end) {
  auto rows = [&](const torch::Tensor& t) { return t.narrow(0, begin, end - begin); };
  const auto types = batch.token_type_ids.defined() ? rows(batch.token_type_ids) : torch::Tensor();
  return Batch{rows(batch.input_ids), rows(batch.attention_mask), rows(batch.last_index), rows(batch.labels),
               rows(batch.example_index), types};
}

Batch collate(const std::vector<const TokenizedExample*>& rows, LabelKind kind, int64_t pad_id) {
  const int64_t batch = int64_t(rows.size());
  int64_t length = 1;
  for (const auto* r : rows) length = std::max<int64_t>(length, int64_t(r->input_ids.size()));
  auto ids = torch::full({batch, length}, pad_id, torch::kInt64);
  auto mask = torch::zeros({batch, length}, torch::kInt64);
  auto last = torch::zeros({batch}, torch::kInt64);
  auto index = torch::zeros({batch}, torch::kInt64);
  bool typed = false;
  for (const auto* r : rows) typed = typed || !r->token_type_ids.empty();
  torch::Tensor types = typed ? torch::zeros({batch, length}, torch::kInt64) : torch::Tensor();
  torch::Tensor labels;
  if (kind == LabelKind::Tokens) labels = torch::full({batch, length}, int64_t(kIgnoreIndex), torch::kInt64);
  else if (kind == LabelKind::Target) labels = torch::zeros({batch}, torch::kFloat32);
  else labels = torch::zeros({batch}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const TokenizedExample& e = *rows[b];
    const int64_t n = int64_t(e.input_ids.size());
    for (int64_t t = 0; t < n; ++t) {
      ids_a[b][t] = e.input_ids[t];
      mask_a[b][t] = 1;
    }
    if (typed) {
      auto types_a = types.accessor<int64_t, 2>();
      for (size_t t = 0; t < e.token_type_ids.size() && int64_t(t) < length; ++t) types_a[b][t] = e.token_type_ids[t];
    }
    last[b] = std::max<int64_t>(n - 1, 0);
    index[b] = e.example_index;
    if (kind == LabelKind::Tokens) {
      auto labels_a = labels.accessor<int64_t, 2>();
      for (size_t t = 0; t < e.labels.size() && int64_t(t) < length; ++t) labels_a[b][t] = e.labels[t];
    } else if (kind == LabelKind::Target) {
      labels[b] = float(e.target);
    } else {
      labels[b] = e.class_label;
    }
  }
  return Batch{ids, mask, last, labels, index, types};
}

namespace {

// SplitMix64: decorrelates (seed, epoch) pairs so neighbouring epochs get unrelated permutations.
uint64_t mix(uint64_t seed, uint64_t epoch) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (epoch + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Batcher::Batcher(const std::vector<TokenizedExample>& examples, BatcherOptions options)
    : examples_(examples), options_(options) {
  if (examples_.empty()) throw std::invalid_argument("Batcher: the split has no examples");
  if (options_.batch_size <= 0) throw std::invalid_argument("Batcher: batch_size must be positive");
  if (options_.drop_last && int64_t(examples_.size()) < options_.batch_size)
    throw std::invalid_argument("Batcher: drop_last with fewer examples than one batch yields no batches");
  prepare_epoch(0);
}

void Batcher::prepare_epoch(int64_t epoch) {
  if (order_epoch_ == epoch) return;
  const int64_t n = int64_t(examples_.size());
  if (options_.shuffle) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(mix(options_.seed, uint64_t(epoch)));
    torch::Tensor perm = torch::randperm(n, generator, torch::TensorOptions().dtype(torch::kInt64));
    order_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + n);
  } else {
    order_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) order_[size_t(i)] = i;
  }
  order_epoch_ = epoch;
}

int64_t Batcher::batches_per_epoch() const {
  const int64_t n = int64_t(examples_.size());
  return options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

void Batcher::seek(DataPosition position) {
  if (position.epoch < 0 || position.index < 0 || position.index > int64_t(examples_.size()))
    throw std::invalid_argument("Batcher::seek: position outside the split");
  prepare_epoch(position.epoch);
  position_ = position;
}

Batch Batcher::take(int64_t count) {
  std::vector<const TokenizedExample*> rows;
  rows.reserve(size_t(count));
  for (int64_t i = 0; i < count; ++i) rows.push_back(&examples_[size_t(order_[size_t(position_.index + i)])]);
  position_.index += count;
  return collate(rows, options_.label_kind, options_.pad_id);
}

std::optional<Batch> Batcher::next_in_epoch() {
  const int64_t n = int64_t(examples_.size());
  const int64_t left = n - position_.index;
  if (left <= 0 || (options_.drop_last && left < options_.batch_size)) {
    seek({position_.epoch + 1, 0});
    return std::nullopt;
  }
  return take(std::min(left, options_.batch_size));
}

Batch Batcher::next() {
  if (auto batch = next_in_epoch()) return std::move(*batch);
  return std::move(*next_in_epoch());  // the constructor guarantees every epoch has a batch
}

}  // namespace peftlab
