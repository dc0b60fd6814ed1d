// Beam search against an exhaustive computation: over two new tokens the result must be the best
// two-token continuation among the beams' first tokens, computed here by full forwards without the cache.
// Batched generation (left padding, per-row positions, rows leaving the batch) against one prompt at a time,
// and a left-padded forward against each row's own forward in float64.
#include <gtest/gtest.h>

#include <set>

#include "core/generate.h"
#include "core/model_io.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

LoadedModel stories() { return load_model_and_tokenizer(testing::stories260k_bin(), testing::stories260k_tokenizer()); }

torch::Tensor last_logprobs(BackboneImpl& model, const std::vector<int>& ids) {
  auto input = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
  return torch::log_softmax(model.forward(input).select(1, long(ids.size()) - 1).squeeze(0).to(torch::kFloat64), -1);
}

TEST(BeamSearch, OneBeamIsGreedy) {
  auto m = stories();
  auto prompt = m.tokenizer->encode("Once upon a time", true);
  GenerationOptions greedy;
  greedy.max_new_tokens = 30;
  greedy.stop_ids = {m.tokenizer->eos_id()};
  EXPECT_EQ(beam_search(*m.model, prompt, 1, 30, greedy.stop_ids), generate(*m.model, prompt, greedy));
}

TEST(BeamSearch, TwoTokensEqualTheExhaustiveBestOverTheBeamsFirstTokens) {
  auto m = stories();
  torch::NoGradGuard no_grad;
  const auto prompt = m.tokenizer->encode("Lily saw a", true);
  for (int64_t beams : {2, 3, 5}) {
    auto first = last_logprobs(*m.model, prompt);
    auto top = std::get<1>(first.topk(beams));  // the beams after the first token
    double best = -std::numeric_limits<double>::infinity();
    std::vector<int> expected;
    for (int64_t k = 0; k < beams; ++k) {
      std::vector<int> ids = prompt;
      ids.push_back(int(top[k].item<int64_t>()));
      auto second = last_logprobs(*m.model, ids);
      const double total = first[ids.back()].item<double>() + second.max().item<double>();
      if (total > best) best = total, expected = {ids.back(), int(second.argmax().item<int64_t>())};
    }
    EXPECT_EQ(beam_search(*m.model, prompt, beams, 2, {}), expected) << beams << " beams";
  }
}

// Prompts of very different lengths, so that the batch is mostly left padding for the short ones.
std::vector<std::vector<int>> story_prompts(const Tokenizer& tokenizer) {
  std::vector<std::vector<int>> prompts;
  for (const char* text : {"Once upon a time", "Lily", "The little dog wanted to play with the ball, but the ball was",
                           "Tom and his mom went to the park. They saw a big", "One day"})
    prompts.push_back(tokenizer.encode(text, true));
  return prompts;
}

TEST(BatchedGeneration, LeftPaddedRowsGiveEachRowsOwnHiddenStatesInFloat64) {
  auto m = stories();
  m.model->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  const std::vector<std::vector<int64_t>> rows = {{1, 400, 20, 31, 7, 99}, {1, 55, 3}};
  const int64_t width = 6;
  auto ids = torch::zeros({2, width}, torch::kLong), mask = torch::zeros({2, width}, torch::kLong);
  auto positions = torch::zeros({2, width}, torch::kLong);
  for (int64_t r = 0; r < 2; ++r) {
    const int64_t pad = width - int64_t(rows[size_t(r)].size());
    for (int64_t t = 0; t < int64_t(rows[size_t(r)].size()); ++t)
      ids[r][pad + t] = rows[size_t(r)][size_t(t)], mask[r][pad + t] = 1, positions[r][pad + t] = t;
  }
  BackboneInputs in;
  in.input_ids = ids, in.attention_mask = mask, in.position_ids = positions;
  auto batched = m.model->hidden_states(in);
  for (int64_t r = 0; r < 2; ++r) {
    const int64_t length = int64_t(rows[size_t(r)].size());
    auto alone = m.model->hidden_states(torch::tensor(rows[size_t(r)]).unsqueeze(0)).squeeze(0);
    auto real = batched[r].narrow(0, width - length, length);
    EXPECT_LT((real - alone).abs().max().item<double>(), 1e-12) << "row " << r;
  }
}

TEST(BatchedGeneration, GreedyBatchEqualsOnePromptAtATime) {
  auto m = stories();
  const auto prompts = story_prompts(*m.tokenizer);
  // "." ends many sentences early: rows stop at different steps and leave the batch.
  const std::vector<int> stops = {m.tokenizer->eos_id(), m.tokenizer->encode("The end.", false).back()};
  const auto batched = generate_batch(*m.model, prompts, 40, stops);
  ASSERT_EQ(batched.size(), prompts.size());
  size_t lengths_seen = 0;
  std::set<size_t> lengths;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationOptions greedy;
    greedy.max_new_tokens = 40;
    greedy.stop_ids = stops;
    EXPECT_EQ(batched[i], generate(*m.model, prompts[i], greedy)) << "prompt " << i;
    lengths.insert(batched[i].size());
    lengths_seen += batched[i].size();
  }
  EXPECT_GT(lengths.size(), 1u);  // rows did finish at different steps
  EXPECT_GT(lengths_seen, 0u);
}

// A stop string ends a reply after the token whose text completes it. The expected replies come from the
// unstopped ones: the shortest prefix whose decoded text contains the string.
TEST(BatchedGeneration, StopStringsEndRepliesAtTheirFirstOccurrence) {
  auto m = stories();
  const auto prompts = story_prompts(*m.tokenizer);
  const std::vector<int> eos = {m.tokenizer->eos_id()};
  const auto unstopped = generate_batch(*m.model, prompts, 40, eos);
  const std::vector<std::string> strings = {" was", "."};
  const auto stopped = generate_batch(*m.model, prompts, 40, eos, reply_contains_any(*m.tokenizer, strings));
  ASSERT_EQ(stopped.size(), prompts.size());
  size_t ended_early = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i));
    size_t k = 0;
    auto contains = [&](size_t n) {
      const std::string text = m.tokenizer->decode({unstopped[i].begin(), unstopped[i].begin() + long(n)});
      return text.find(" was") != std::string::npos || text.find('.') != std::string::npos;
    };
    while (k < unstopped[i].size() && !contains(k)) ++k;
    const std::vector<int> expected(unstopped[i].begin(), unstopped[i].begin() + long(k));
    EXPECT_EQ(stopped[i], expected);
    if (k < unstopped[i].size()) ++ended_early;
    GenerationOptions greedy;
    greedy.max_new_tokens = 40;
    greedy.stop_ids = eos;
    greedy.reply_ended = reply_contains_any(*m.tokenizer, strings);
    EXPECT_EQ(generate(*m.model, prompts[i], greedy), expected);  // one prompt alone stops at the same token
  }
  EXPECT_GT(ended_early, 1u);  // the strings really ended replies
  EXPECT_FALSE(reply_contains_any(*m.tokenizer, {}));  // no strings: no check at all
}

TEST(BatchedGeneration, RowsNearTheContextStopWhereTheyWouldAlone) {
  auto m = stories();
  const int64_t context = m.model->config().max_position_embeddings;
  std::vector<int> long_prompt = {1};
  while (int64_t(long_prompt.size()) < context - 5) long_prompt.push_back(300 + int(long_prompt.size() % 50));
  std::vector<int> too_long(size_t(context + 1), 42);
  too_long[0] = 1;
  const std::vector<std::vector<int>> prompts = {long_prompt, m.tokenizer->encode("Once upon a time", true), too_long};
  const auto batched = generate_batch(*m.model, prompts, 20, {});
  GenerationOptions greedy;
  greedy.max_new_tokens = 20;
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(batched[i], generate(*m.model, prompts[i], greedy)) << "prompt " << i;
  EXPECT_EQ(batched[0].size(), 6u);   // positions context-5 .. context-1 fed, then the context is full
  EXPECT_EQ(batched[1].size(), 20u);
  EXPECT_TRUE(batched[2].empty());
}

TEST(BatchedGeneration, BeamSearchBatchEqualsOnePromptAtATime) {
  auto m = stories();
  const auto prompts = story_prompts(*m.tokenizer);
  const std::vector<int> stops = {m.tokenizer->eos_id(), m.tokenizer->encode("The end.", false).back()};
  for (int64_t beams : {1, 4}) {
    const auto batched = beam_search_batch(*m.model, prompts, beams, 24, stops);
    ASSERT_EQ(batched.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i)
      EXPECT_EQ(batched[i], beam_search(*m.model, prompts[i], beams, 24, stops)) << beams << " beams, prompt " << i;
  }
}

// `peftlab generate --stop`: the text of the unstopped run, up to the token that completes the first ". ".
TEST(GenerateCli, StopStringEndsTheTextAfterItsFirstOccurrence) {
  const std::vector<std::string> common = {"-q", "generate", "--model", testing::stories260k_bin().string(),
                                           "--prompt", "Once upon a time", "--max-new-tokens", "60"};
  auto full = testing::run_cli(common);
  auto with_stop = common;
  with_stop.insert(with_stop.end(), {"--stop", ". "});
  auto stopped = testing::run_cli(with_stop);
  ASSERT_EQ(full.status, 0) << full.output;
  ASSERT_EQ(stopped.status, 0) << stopped.output;
  const std::string prompt = "Once upon a time";
  const size_t first = full.output.find(". ", prompt.size());
  ASSERT_NE(first, std::string::npos) << full.output;
  const std::string text = stopped.output.substr(0, stopped.output.find_last_not_of('\n') + 1);
  EXPECT_EQ(full.output.compare(0, text.size(), text), 0) << "not a prefix:\n" << text << "\n" << full.output;
  EXPECT_GE(text.size(), first + 2);      // it holds the string ...
  EXPECT_LT(text.size(), first + 2 + 12);  // ... and ends within the token that completed it
  with_stop.insert(with_stop.end(), {"--num-beams", "2"});
  auto beams = testing::run_cli(with_stop);
  EXPECT_EQ(beams.status, 2) << beams.output;
  EXPECT_NE(beams.output.find("--stop"), std::string::npos) << beams.output;
}

}  // namespace
}  // namespace peftlab
