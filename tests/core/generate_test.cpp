// Beam search against an exhaustive computation: over two new tokens the result must be the best
// two-token continuation among the beams' first tokens, computed here by full forwards without the cache.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace peftlab
