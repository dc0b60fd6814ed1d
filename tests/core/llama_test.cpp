// The backbone against independent references: the published stories260K greedy text, a float64 re-derivation
// of the two rotary conventions, and closed-form parameter counts.
#include <gtest/gtest.h>

#include "core/errors.h"
#include "core/families/llama.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/generate.h"
#include "core/llama2c.h"
#include "core/model_io.h"
#include "tests/test_support.h"

namespace peftlab {

// From ../shared/data/README.md (the llama2.c project's published output for this checkpoint).
const char* kPublishedGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but it was too high";

std::string greedy_story(BackboneImpl& model, const Tokenizer& tokenizer, int64_t tokens) {
  GenerationOptions options;
  options.max_new_tokens = tokens;
  options.stop_ids = {tokenizer.bos_id(), tokenizer.eos_id()};
  return tokenizer.decode(generate(model, {tokenizer.bos_id()}, options));
}

TEST(Llama2c, HeaderOfStories260k) {
  auto config = read_llama2c_config(testing::stories260k_bin());
  const auto& c = dynamic_cast<const LlamaConfig&>(*config);
  EXPECT_EQ(c.model_type(), "llama");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.rope_interleaved);
}

TEST(Llama2c, ParameterCountMatchesFileSize) {
  // The file holds the header, every parameter once (tied output), and the rotary tables (seq_len x head_dim).
  auto config = read_llama2c_config(testing::stories260k_bin());
  const auto& c = dynamic_cast<const LlamaConfig&>(*config);
  const auto bytes = static_cast<int64_t>(std::filesystem::file_size(testing::stories260k_bin()));
  EXPECT_EQ(28 + 4 * (c.parameter_count() + c.max_position_embeddings * c.attention_head_dim()), bytes);
  Backbone model = load_llama2c(testing::stories260k_bin());
  int64_t counted = 0;
  for (const auto& p : model->parameters()) counted += p.numel();
  EXPECT_EQ(counted, c.parameter_count());
}

TEST(Llama2c, GreedyDecodingReproducesPublishedText) {
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  Backbone model = load_llama2c(testing::stories260k_bin());
  model->eval();
  std::string text = greedy_story(*model, tokenizer, 60);
  EXPECT_EQ(text.substr(0, std::string(kPublishedGreedyText).size()), kPublishedGreedyText) << text;
}

TEST(Llama2c, KvCacheMatchesFullRecomputation) {
  Backbone model = load_llama2c(testing::stories260k_bin());
  model->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::tensor({1L, 400L, 30L, 77L, 5L, 300L}).unsqueeze(0);
  auto full = model->forward(tokens);
  KVCache cache;
  auto first = model->forward(tokens.narrow(1, 0, 4), 0, &cache);
  auto rest = model->forward(tokens.narrow(1, 4, 2), 4, &cache);
  EXPECT_LT((torch::cat({first, rest}, 1) - full).abs().max().item<double>(), 1e-5);
}

TEST(Rotary, PermutedRowsGiveTheSameAttentionScores) {
  // q·k after llama2.c's interleaved rotation equals q'·k' after rotate-half on permuted rows; checked in
  // float64 on random vectors with the rotation written out by hand.
  torch::manual_seed(0);
  const int64_t head_dim = 8, pos_q = 3, pos_k = 1;
  auto q = torch::randn({head_dim}, torch::kFloat64), k = torch::randn({head_dim}, torch::kFloat64);
  auto rotate_interleaved = [&](torch::Tensor x, int64_t pos) {
    auto out = x.clone();
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      double angle = pos * std::pow(10000.0, -2.0 * i / head_dim);
      double a = x[2 * i].item<double>(), b = x[2 * i + 1].item<double>();
      out[2 * i] = a * std::cos(angle) - b * std::sin(angle);
      out[2 * i + 1] = a * std::sin(angle) + b * std::cos(angle);
    }
    return out;
  };
  auto rotate_half = [&](torch::Tensor x, int64_t pos) {
    auto out = x.clone();
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      double angle = pos * std::pow(10000.0, -2.0 * i / head_dim);
      double a = x[i].item<double>(), b = x[i + head_dim / 2].item<double>();
      out[i] = a * std::cos(angle) - b * std::sin(angle);
      out[i + head_dim / 2] = a * std::sin(angle) + b * std::cos(angle);
    }
    return out;
  };
  auto perm_q = permute_rotary_rows(q.unsqueeze(1), 1).squeeze(1);
  auto perm_k = permute_rotary_rows(k.unsqueeze(1), 1).squeeze(1);
  double interleaved = rotate_interleaved(q, pos_q).dot(rotate_interleaved(k, pos_k)).item<double>();
  double halves = rotate_half(perm_q, pos_q).dot(rotate_half(perm_k, pos_k)).item<double>();
  EXPECT_NEAR(interleaved, halves, 1e-12);
  EXPECT_TRUE(torch::equal(permute_rotary_rows(perm_q.unsqueeze(1), 1, /*inverse=*/true).squeeze(1), q));
}

TEST(Llama2c, TruncatedFileIsInputError) {
  testing::TempDir dir;
  std::string bytes = testing::read_file(testing::stories260k_bin());
  testing::write_file(dir / "cut.bin", bytes.substr(0, bytes.size() - 100));
  try {
    read_llama2c_config(dir / "cut.bin");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  testing::write_file(dir / "tiny.bin", "abc");
  EXPECT_THROW(read_llama2c_config(dir / "tiny.bin"), InputError);
}

TEST(Llama2c, NanWeightIsInputError) {
  testing::TempDir dir;
  std::string bytes = testing::read_file(testing::stories260k_bin());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&bytes[28 + 4 * 100], &nan, 4);
  testing::write_file(dir / "nan.bin", bytes);
  try {
    load_llama2c(dir / "nan.bin");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

}  // namespace peftlab
