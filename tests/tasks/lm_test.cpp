#include "tasks/lm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/errors.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/text_tables.h"
#include "tasks/task.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(LanguageModelTask, BlocksPredictEveryTokenOnceAndCountBytes) {
  TempDir dir;
  const std::string train = "Once upon a time, there was a little girl.\nShe liked caf\xC3\xA9s and \xE2\x82\xAC coins.\n";
  write_file(dir / "train.txt", train);
  write_file(dir / "eval.txt", "The end.\n");
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto task = make_task_from_yaml("{name: lm, block_size: 8, train_file: " + (dir / "train.txt").string() +
                                  ", eval_file: " + (dir / "eval.txt").string() + "}");
  EXPECT_EQ(task->kind(), TaskKind::CausalLM);
  auto blocks = task->tokenize("train", task->load("train"), tokenizer);
  std::vector<int> stream = tokenizer.encode(train);
  stream.insert(stream.begin(), tokenizer.bos_id());
  // Blocks of 8 with stride 7: ceil((n - 1) / 7) of them; their predicted tokens are stream[1:] in order.
  EXPECT_EQ(blocks.size(), (stream.size() - 1 + 6) / 7);
  std::vector<int> predicted;
  int64_t bytes = 0;
  for (const auto& b : blocks) {
    EXPECT_LE(b.input_ids.size(), 8u);
    EXPECT_EQ(b.labels[0], kIgnoreIndex);
    for (size_t t = 1; t < b.labels.size(); ++t) predicted.push_back(b.labels[t]);
    bytes += b.byte_count;
  }
  EXPECT_EQ(predicted, std::vector<int>(stream.begin() + 1, stream.end()));
  // The bytes of the text, plus one for the space SentencePiece puts before the first word.
  EXPECT_EQ(bytes, int64_t(train.size()) + 1);
  EXPECT_EQ(task->load("dev")[0].texts[0], "The end.\n");
}

TEST(LanguageModelTask, ScoreFromBlockNll) {
  auto task = make_task_from_yaml("{name: lm}");
  std::vector<TokenizedExample> blocks(2);
  blocks[0].labels = {-100, 5, 6, 7};  // 3 predicted tokens
  blocks[0].byte_count = 10;
  blocks[1].labels = {-100, 8};        // 1 predicted token
  blocks[1].byte_count = 6;
  auto s = task->score("dev", blocks, {3.0, 1.0});
  EXPECT_NEAR(s.at("perplexity"), std::exp(4.0 / 4.0), 1e-12);
  EXPECT_NEAR(s.at("bits_per_byte"), 4.0 / (std::log(2.0) * 16), 1e-12);
  EXPECT_NEAR(s.at("nll_per_token"), 1.0, 1e-12);
}

TEST(LanguageModelTask, HeldOutTailOfTinyShakespeare) {
  auto task = make_task_from_yaml("{name: lm}");
  std::string whole = read_text_file(task->files("train").at(0));
  EXPECT_EQ(whole.size(), 1115394u);  // ls -l corpora/tinyshakespeare.txt
  std::string train = task->load("train")[0].texts[0], dev = task->load("dev")[0].texts[0];
  EXPECT_EQ(train + dev, whole);
  EXPECT_EQ(train.back(), '\n');  // cut at a line start
  EXPECT_NEAR(double(dev.size()) / double(whole.size()), 0.1, 0.001);
}

TEST(LanguageModelTask, TokenBytes) {
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  EXPECT_EQ(token_byte_count(tokenizer, tokenizer.bos_id()), 0);
  std::vector<int> ids = tokenizer.encode("hello world");
  int64_t bytes = 0;
  for (int id : ids) bytes += token_byte_count(tokenizer, id);
  EXPECT_EQ(bytes, int64_t(std::string(" hello world").size()));
}

TEST(LanguageModelTask, OptionErrors) {
  EXPECT_THROW(make_task_from_yaml("{name: lm, eval_fraction: 1.5}"), InputError);
  EXPECT_THROW(make_task_from_yaml("{name: lm, block_size: 1}"), InputError);
  TempDir dir;
  write_file(dir / "empty.txt", "");
  auto task = make_task_from_yaml("{name: lm, train_file: " + (dir / "empty.txt").string() + "}");
  EXPECT_THROW(task->load("train"), InputError);
}

}  // namespace
}  // namespace peftlab
