#include "core/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
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

std::vector<int> generate(LlamaImpl& model, const std::vector<int>& prompt, const GenerationOptions& options,
                          const std::function<void(int)>& on_token) {
  if (prompt.empty()) throw std::invalid_argument("generate needs a non-empty prompt (at least BOS)");
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const auto device = model.embed_tokens->weight.device();
  const int64_t context = model.config().max_seq_len;
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

}  // namespace peftlab
