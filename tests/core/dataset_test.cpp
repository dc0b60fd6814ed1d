#include "core/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <set>

#include "core/sentencepiece_tokenizer.h"
#include "core/tokenizer.h"
#include "tasks/task.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;
using testing::write_file;

std::vector<TokenizedExample> sample_examples(int n) {
  std::vector<TokenizedExample> out;
  for (int i = 0; i < n; ++i) {
    TokenizedExample e;
    for (int t = 0; t <= i % 5; ++t) e.input_ids.push_back(100 + i * 10 + t);
    e.labels = e.input_ids;
    e.labels[0] = kIgnoreIndex;
    e.class_label = i % 3;
    e.target = 0.5 * i;
    e.example_index = i;
    e.byte_count = 7 * i;
    out.push_back(e);
  }
  return out;
}

bool same(const TokenizedExample& a, const TokenizedExample& b) {
  return a.input_ids == b.input_ids && a.labels == b.labels && a.class_label == b.class_label &&
         a.target == b.target && a.example_index == b.example_index && a.byte_count == b.byte_count;
}

TEST(TokenCache, RoundTripAndRejections) {
  TempDir dir;
  auto examples = sample_examples(7);
  write_tokenized(dir / "a.tok", std::string(64, 'a'), examples);
  auto back = read_tokenized(dir / "a.tok", std::string(64, 'a'));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), examples.size());
  for (size_t i = 0; i < examples.size(); ++i) EXPECT_TRUE(same((*back)[i], examples[i])) << i;
  EXPECT_FALSE(read_tokenized(dir / "a.tok", std::string(64, 'b')));  // another key
  EXPECT_FALSE(read_tokenized(dir / "missing.tok", std::string(64, 'a')));
  std::string bytes = testing::read_file(dir / "a.tok");
  write_file(dir / "cut.tok", bytes.substr(0, bytes.size() - 20));  // truncated (an interrupted write)
  EXPECT_FALSE(read_tokenized(dir / "cut.tok", std::string(64, 'a')));
  write_file(dir / "long.tok", bytes + "x");
  EXPECT_FALSE(read_tokenized(dir / "long.tok", std::string(64, 'a')));
}

TEST(TokenCache, TokenisesOnceThenHits) {
  TempDir dir;
  CacheKey key{"t-train", "tok", {"f1"}, "opts"};
  int calls = 0;
  auto tokenize = [&] {
    ++calls;
    return sample_examples(3);
  };
  bool hit = true;
  auto first = load_or_tokenize(key, dir.path(), tokenize, &hit);
  EXPECT_FALSE(hit);
  auto second = load_or_tokenize(key, dir.path(), tokenize, &hit);
  EXPECT_TRUE(hit);
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_TRUE(same(second[2], first[2]));
  key.file_checksums = {"f2"};  // a changed data file
  load_or_tokenize(key, dir.path(), tokenize, &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(calls, 2);
}

TEST(TokenCache, KeyChangesWithEveryPart) {
  CacheKey base{"n", "tok", {"a", "b"}, "o"};
  std::set<std::string> digests{base.digest()};
  for (auto change : std::vector<std::function<void(CacheKey&)>>{
           [](CacheKey& k) { k.tokenizer_checksum = "tok2"; }, [](CacheKey& k) { k.file_checksums = {"a", "c"}; },
           [](CacheKey& k) { k.file_checksums = {"ab"}; }, [](CacheKey& k) { k.options = "o2"; }}) {
    CacheKey k = base;
    change(k);
    digests.insert(k.digest());
  }
  EXPECT_EQ(digests.size(), 5u);
}

// End to end through a task: a changed data file is tokenised again, with its new content.
TEST(TokenCache, ChangedDataFileInvalidatesTaskCache) {
  TempDir dir;
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  write_file(dir / "train.tsv", "text\tlabel\nOnce upon a time\tyes\nThe dog ran\tno\n");
  std::string yaml = "{name: custom, format: tsv, train: " + (dir / "train.tsv").string() +
                     ", text_fields: [text], label_field: label, labels: [no, yes]}";
  auto task = make_task_from_yaml(yaml);
  bool hit = true;
  auto first = tokenized_split(*task, "train", tokenizer, dir / "cache", &hit);
  EXPECT_FALSE(hit);
  tokenized_split(*task, "train", tokenizer, dir / "cache", &hit);
  EXPECT_TRUE(hit);
  write_file(dir / "train.tsv", "text\tlabel\nOnce upon a time\tyes\nThe cat sat\tyes\nA\tno\n");
  auto changed = tokenized_split(*task, "train", tokenizer, dir / "cache", &hit);
  EXPECT_FALSE(hit);
  ASSERT_EQ(changed.size(), 3u);
  EXPECT_EQ(changed[1].class_label, 1);
  std::vector<int> expected = tokenizer.encode("The cat sat", true);
  EXPECT_EQ(changed[1].input_ids, std::vector<int32_t>(expected.begin(), expected.end()));
  // A different formatting option is another cache entry.
  auto shorter = make_task_from_yaml(yaml.substr(0, yaml.size() - 1) + ", max_seq_len: 2}");
  auto cut = tokenized_split(*shorter, "train", tokenizer, dir / "cache", &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(cut[1].input_ids.size(), 2u);
}

TEST(Collate, PadsMasksAndLastIndex) {
  auto examples = sample_examples(3);  // lengths 1, 2, 3
  std::vector<const TokenizedExample*> rows = {&examples[2], &examples[0], &examples[1]};
  Batch b = collate(rows, LabelKind::Tokens, 0);
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(b.input_ids.dtype(), torch::kInt64);
  EXPECT_TRUE(torch::equal(b.input_ids, torch::tensor({{120, 121, 122}, {100, 0, 0}, {110, 111, 0}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.attention_mask, torch::tensor({{1, 1, 1}, {1, 0, 0}, {1, 1, 0}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.last_index, torch::tensor({2, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.labels, torch::tensor({{-100, 121, 122}, {-100, -100, -100}, {-100, 111, -100}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.example_index, torch::tensor({2, 0, 1}, torch::kInt64)));
  Batch c = collate(rows, LabelKind::Class, 0);
  EXPECT_TRUE(torch::equal(c.labels, torch::tensor({2, 0, 1}, torch::kInt64)));
  Batch t = collate(rows, LabelKind::Target, 0);
  EXPECT_EQ(t.labels.dtype(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(t.labels, torch::tensor({1.0f, 0.0f, 0.5f})));
}

std::vector<int64_t> indices(const Batch& b) {
  return std::vector<int64_t>(b.example_index.data_ptr<int64_t>(), b.example_index.data_ptr<int64_t>() + b.size());
}

TEST(Batcher, InOrderWithoutShuffle) {
  auto examples = sample_examples(5);
  Batcher batcher(examples, {2, false, 0, false, 0, LabelKind::Class});
  EXPECT_EQ(indices(*batcher.next_in_epoch()), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(indices(*batcher.next_in_epoch()), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(indices(*batcher.next_in_epoch()), (std::vector<int64_t>{4}));
  EXPECT_FALSE(batcher.next_in_epoch());
  EXPECT_EQ(batcher.position(), (DataPosition{1, 0}));
  EXPECT_EQ(batcher.batches_per_epoch(), 3);
  Batcher dropping(examples, {2, false, 0, true, 0, LabelKind::Class});
  EXPECT_EQ(dropping.batches_per_epoch(), 2);
  dropping.next();
  dropping.next();
  EXPECT_EQ(indices(dropping.next()), (std::vector<int64_t>{0, 1}));  // the short batch was dropped
}

TEST(Batcher, ShuffledEpochsArePermutationsAndSeeded) {
  auto examples = sample_examples(50);
  Batcher a(examples, {7, true, 42, false, 0, LabelKind::Class});
  Batcher b(examples, {7, true, 42, false, 0, LabelKind::Class});
  Batcher c(examples, {7, true, 43, false, 0, LabelKind::Class});
  std::vector<int64_t> epoch0, epoch1, other_seed;
  while (auto batch = a.next_in_epoch()) {
    auto i = indices(*batch);
    epoch0.insert(epoch0.end(), i.begin(), i.end());
    EXPECT_TRUE(torch::equal(batch->input_ids, b.next_in_epoch()->input_ids));
  }
  while (auto batch = a.next_in_epoch()) {
    auto i = indices(*batch);
    epoch1.insert(epoch1.end(), i.begin(), i.end());
  }
  while (auto batch = c.next_in_epoch()) {
    auto i = indices(*batch);
    other_seed.insert(other_seed.end(), i.begin(), i.end());
  }
  std::vector<int64_t> sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(50);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  EXPECT_NE(epoch0, all);  // shuffled (a fixed order would be 1 in 50!)
  EXPECT_NE(epoch0, epoch1);
  EXPECT_NE(epoch0, other_seed);
}

TEST(Batcher, ResumesFromASavedPosition) {
  auto examples = sample_examples(23);
  BatcherOptions options{4, true, 7, false, 0, LabelKind::Tokens};
  Batcher original(examples, options);
  for (int i = 0; i < 9; ++i) original.next();  // into the second epoch (6 batches per epoch)
  DataPosition saved = original.position();
  EXPECT_EQ(saved.epoch, 1);
  std::vector<Batch> expected;
  for (int i = 0; i < 8; ++i) expected.push_back(original.next());
  Batcher resumed(examples, options);
  resumed.seek(saved);
  for (int i = 0; i < 8; ++i) {
    Batch got = resumed.next();
    EXPECT_TRUE(torch::equal(got.input_ids, expected[size_t(i)].input_ids)) << i;
    EXPECT_TRUE(torch::equal(got.labels, expected[size_t(i)].labels)) << i;
  }
  EXPECT_THROW(resumed.seek({0, 24}), std::invalid_argument);
}

TEST(Batcher, RejectsEmptySplits) {
  std::vector<TokenizedExample> none;
  EXPECT_THROW(Batcher(none, BatcherOptions{}), std::invalid_argument);
}

TEST(CacheDir, FollowsEnvironment) {
  const char* before = std::getenv("PEFTLAB_CACHE");
  std::string saved = before ? before : "";
  ::setenv("PEFTLAB_CACHE", "/tmp/some-cache", 1);
  EXPECT_EQ(default_cache_dir(), std::filesystem::path("/tmp/some-cache"));
  ::unsetenv("PEFTLAB_CACHE");
  EXPECT_EQ(default_cache_dir().filename(), "peftlab");
  if (before) ::setenv("PEFTLAB_CACHE", saved.c_str(), 1);
}

}  // namespace
}  // namespace peftlab

namespace peftlab {
namespace {

// The whole SST-2 train split through the cache: tokenised once (67,349 rows), then read back.
TEST(TokenCacheSlow, FullSst2Train) {
  TempDir dir;
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto task = make_task_from_yaml("{name: sst2}");
  bool hit = true;
  auto start = std::chrono::steady_clock::now();
  auto first = tokenized_split(*task, "train", tokenizer, dir / "cache", &hit);
  auto tokenised = std::chrono::steady_clock::now();
  EXPECT_FALSE(hit);
  auto again = tokenized_split(*task, "train", tokenizer, dir / "cache", &hit);
  auto read = std::chrono::steady_clock::now();
  EXPECT_TRUE(hit);
  ASSERT_EQ(first.size(), 67349u);
  ASSERT_EQ(again.size(), 67349u);
  EXPECT_EQ(again.back().input_ids, first.back().input_ids);
  using ms = std::chrono::milliseconds;
  std::printf("sst2 train: tokenise + write %lld ms, read cache %lld ms\n",
              (long long)std::chrono::duration_cast<ms>(tokenised - start).count(),
              (long long)std::chrono::duration_cast<ms>(read - tokenised).count());
}

}  // namespace
}  // namespace peftlab
