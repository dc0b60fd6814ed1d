#include "core/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace peftlab {

int64_t sample_next_token(const torch::Tensor& logits, const GenerationOptions& options, torch::Generator& generator) {
  auto row = logits.to(torch::kFloat32).flatten();
  if (options.temperature <= 0.0) return row.argmax().item<int64_t>();
  auto probs = torch::softmax(row / options.temperature, 0);
  if (options.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose mass reaches top_p (the first always stays).
    auto [sorted, order] = probs.sort(0, /*descending=*/true);
    auto mass_before = sorted.cumsum(0) - sorted;
    sorted = sorted.masked_fill(mass_before >= options.top_p, 0.0);
    probs = torch::zeros_like(probs).scatter(0, order, sorted);
  }
  return torch::multinomial(probs, 1, /*replacement=*/false, generator).item<int64_t>();
}

std::vector<int> generate(BackboneImpl& model, const std::vector<int>& prompt, const GenerationOptions& options,
                          const std::function<void(int)>& on_token) {
  if (prompt.empty()) throw std::invalid_argument("generate needs a non-empty prompt (at least BOS)");
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  if (!model.config().is_decoder())
    throw std::invalid_argument(model.config().model_type() + " is not a causal language model; it does not generate");
  const auto device = model.parameters().front().device();
  const int64_t context = model.config().max_position_embeddings;
  KVCache cache;
  std::vector<int64_t> prompt64(prompt.begin(), prompt.end());
  auto input = torch::tensor(prompt64, torch::kLong).unsqueeze(0).to(device);
  std::vector<int> produced;
  int64_t position = 0;
  while (static_cast<int64_t>(produced.size()) < options.max_new_tokens && position + input.size(1) <= context) {
    auto hidden = model.hidden_states(input, position, &cache);
    position += input.size(1);
    auto logits = model.logits(hidden.select(1, hidden.size(1) - 1)).squeeze(0);
    const int next = static_cast<int>(sample_next_token(logits, options, generator));
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end()) break;
    produced.push_back(next);
    if (on_token) on_token(next);
    input = torch::full({1, 1}, next, torch::TensorOptions().dtype(torch::kLong).device(device));
  }
  return produced;
}

namespace {

struct Hypothesis {
  std::vector<int> tokens;
  double score = 0;  // sum of log-probabilities / length^penalty
};

double normalised(double sum_logprob, size_t length, double length_penalty) {
  return sum_logprob / std::pow(static_cast<double>(std::max<size_t>(length, 1)), length_penalty);
}

}  // namespace

std::vector<int> beam_search(BackboneImpl& model, const std::vector<int>& prompt, int64_t num_beams,
                             int64_t max_new_tokens, const std::vector<int>& stop_ids, double length_penalty) {
  if (prompt.empty()) throw std::invalid_argument("beam_search needs a non-empty prompt (at least BOS)");
  if (num_beams < 1) throw std::invalid_argument("beam_search needs num_beams >= 1");
  torch::NoGradGuard no_grad;
  if (!model.config().is_decoder())
    throw std::invalid_argument(model.config().model_type() + " is not a causal language model; it does not generate");
  const auto device = model.parameters().front().device();
  const int64_t context = model.config().max_position_embeddings;
  KVCache cache;
  std::vector<int64_t> prompt64(prompt.begin(), prompt.end());
  auto input = torch::tensor(prompt64, torch::kLong).unsqueeze(0).to(device);
  std::vector<std::vector<int>> beams = {{}};  // live hypotheses' new tokens
  std::vector<double> beam_logprob = {0.0};
  std::vector<Hypothesis> finished;
  auto is_stop = [&](int token) { return std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end(); };
  auto worst_finished = [&] {
    double worst = std::numeric_limits<double>::infinity();
    for (const auto& h : finished) worst = std::min(worst, h.score);
    return worst;
  };
  int64_t position = 0;
  for (int64_t step = 0; step < max_new_tokens && position + input.size(1) <= context; ++step) {
    auto hidden = model.hidden_states(input, position, &cache);
    position += input.size(1);
    auto logprobs = torch::log_softmax(model.logits(hidden.select(1, hidden.size(1) - 1)).to(torch::kFloat64), -1);
    const int64_t vocab = logprobs.size(-1);
    auto totals = logprobs + torch::tensor(beam_logprob, torch::kFloat64).to(device).unsqueeze(1);
    // Twice the beams, as Hugging Face does, so that enough live candidates remain after stops.
    auto [values, indices] = totals.flatten().topk(std::min<int64_t>(2 * num_beams, totals.numel()));
    values = values.cpu(), indices = indices.cpu();
    std::vector<std::vector<int>> next_beams;
    std::vector<double> next_logprob;
    std::vector<int64_t> source;
    for (int64_t k = 0; k < values.size(0) && int64_t(next_beams.size()) < num_beams; ++k) {
      const int64_t beam = indices[k].item<int64_t>() / vocab;
      const int token = static_cast<int>(indices[k].item<int64_t>() % vocab);
      const double total = values[k].item<double>();
      if (is_stop(token)) {
        // Only a stop among the top num_beams candidates ends a hypothesis (Hugging Face's rule).
        if (k < num_beams) finished.push_back({beams[size_t(beam)], normalised(total, beams[size_t(beam)].size(), length_penalty)});
        continue;
      }
      next_beams.push_back(beams[size_t(beam)]);
      next_beams.back().push_back(token);
      next_logprob.push_back(total);
      source.push_back(beam);
    }
    if (finished.size() > size_t(num_beams)) {
      std::sort(finished.begin(), finished.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
      finished.resize(size_t(num_beams));
    }
    beams = std::move(next_beams), beam_logprob = std::move(next_logprob);
    if (beams.empty()) break;
    // Done when enough have finished and no live beam can still beat the worst of them.
    const double best_live = *std::max_element(beam_logprob.begin(), beam_logprob.end());
    if (int64_t(finished.size()) >= num_beams &&
        normalised(best_live, beams[0].size(), length_penalty) < worst_finished())
      break;
    auto order = torch::tensor(source, torch::kLong).to(device);
    for (size_t layer = 0; layer < cache.keys.size(); ++layer) {
      cache.keys[layer] = cache.keys[layer].index_select(0, order);
      cache.values[layer] = cache.values[layer].index_select(0, order);
    }
    std::vector<int64_t> last;
    for (const auto& b : beams) last.push_back(b.back());
    input = torch::tensor(last, torch::kLong).unsqueeze(1).to(device);
  }
  for (size_t b = 0; b < beams.size(); ++b)
    finished.push_back({beams[b], normalised(beam_logprob[b], beams[b].size(), length_penalty)});
  if (finished.empty()) return {};
  return std::max_element(finished.begin(), finished.end(),
                          [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; })->tokens;
}

}  // namespace peftlab
