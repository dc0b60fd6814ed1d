#include "core/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/tokenizer.h"

namespace peftlab {

ReplyEnded reply_contains_any(const Tokenizer& tokenizer, std::vector<std::string> strings) {
  strings.erase(std::remove(strings.begin(), strings.end(), std::string()), strings.end());
  if (strings.empty()) return {};
  return [&tokenizer, strings = std::move(strings)](const std::vector<int>& reply) {
    const std::string text = tokenizer.decode(reply);
    return std::any_of(strings.begin(), strings.end(),
                       [&](const std::string& s) { return text.find(s) != std::string::npos; });
  };
}

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
    if (options.reply_ended && options.reply_ended(produced)) break;
    input = torch::full({1, 1}, next, torch::TensorOptions().dtype(torch::kLong).device(device));
  }
  return produced;
}

namespace {

// Rows decoding together in one left-padded batch: the shared KV cache, each row's attention mask over it, and
// the input each row feeds next with its positions (each row counts positions from its own first token).
class RowBatch {
 public:
  RowBatch(BackboneImpl& model, const std::vector<const std::vector<int>*>& prompts)
      : model_(model), device_(model.parameters().front().device()) {
    int64_t longest = 0;
    for (const auto* p : prompts) longest = std::max<int64_t>(longest, int64_t(p->size()));
    const int64_t rows = int64_t(prompts.size());
    // Filled on the host, then one copy each: per-element tensor indexing would be one operation per token.
    std::vector<int64_t> ids(size_t(rows * longest), 0), mask(ids.size(), 0), positions(ids.size(), 0);
    for (int64_t r = 0; r < rows; ++r) {
      const auto& prompt = *prompts[size_t(r)];
      const int64_t pad = longest - int64_t(prompt.size());
      for (int64_t t = 0; t < int64_t(prompt.size()); ++t) {
        const size_t at = size_t(r * longest + pad + t);
        ids[at] = prompt[size_t(t)], mask[at] = 1, positions[at] = t;
      }
    }
    auto as_tensor = [&](const std::vector<int64_t>& values) {
      return torch::tensor(values, torch::kLong).view({rows, longest}).to(device_);
    };
    input_ = as_tensor(ids), mask_ = as_tensor(mask), positions_ = as_tensor(positions);
  }

  // Runs the pending input through the model: the logits of each row's last position, (rows, vocab).
  torch::Tensor step() {
    BackboneInputs in;
    in.input_ids = input_;
    in.attention_mask = mask_;
    in.position_ids = positions_;
    in.start_pos = cache_.length();
    in.cache = &cache_;
    auto hidden = model_.hidden_states(in);
    return model_.logits(hidden.select(1, hidden.size(1) - 1));
  }

  // Keeps the rows `source` (indices of the current rows, in the new order; a row may be repeated) and queues
  // `tokens`, one per kept row, as their next input.
  void advance(const std::vector<int64_t>& source, const std::vector<int64_t>& tokens) {
    auto last = positions_.select(1, positions_.size(1) - 1);
    bool same_rows = int64_t(source.size()) == mask_.size(0);
    for (size_t r = 0; same_rows && r < source.size(); ++r) same_rows = source[r] == int64_t(r);
    if (!same_rows) {
      auto order = torch::tensor(source, torch::kLong).to(device_);
      for (size_t layer = 0; layer < cache_.keys.size(); ++layer) {
        cache_.keys[layer] = cache_.keys[layer].index_select(0, order);
        cache_.values[layer] = cache_.values[layer].index_select(0, order);
      }
      mask_ = mask_.index_select(0, order);
      last = last.index_select(0, order);
    }
    mask_ = torch::cat({mask_, torch::ones({mask_.size(0), 1}, mask_.options())}, 1);
    positions_ = (last + 1).unsqueeze(1);
    input_ = torch::tensor(tokens, torch::kLong).unsqueeze(1).to(device_);
  }

 private:
  BackboneImpl& model_;
  torch::Device device_;
  KVCache cache_;
  torch::Tensor input_, mask_, positions_;  // (rows, T), (rows, past + T), (rows, T)
};

void check_prompts(const BackboneImpl& model, const std::vector<std::vector<int>>& prompts, const char* what) {
  for (const auto& prompt : prompts)
    if (prompt.empty()) throw std::invalid_argument(std::string(what) + " needs non-empty prompts (at least BOS)");
  if (!model.config().is_decoder())
    throw std::invalid_argument(model.config().model_type() + " is not a causal language model; it does not generate");
}

struct Hypothesis {
  std::vector<int> tokens;
  double score = 0;  // sum of log-probabilities / length^penalty
};

double normalised(double sum_logprob, size_t length, double length_penalty) {
  return sum_logprob / std::pow(static_cast<double>(std::max<size_t>(length, 1)), length_penalty);
}

// One prompt's beam search: its live hypotheses (one batch row each) and the finished ones.
struct BeamPrompt {
  size_t index = 0;   // in the caller's prompts
  int64_t length = 0;  // prompt tokens
  std::vector<std::vector<int>> beams = {{}};  // live hypotheses' new tokens
  std::vector<double> beam_logprob = {0.0};
  std::vector<Hypothesis> finished;

  double worst_finished() const {
    double worst = std::numeric_limits<double>::infinity();
    for (const auto& h : finished) worst = std::min(worst, h.score);
    return worst;
  }
};

}  // namespace

std::vector<std::vector<int>> generate_batch(BackboneImpl& model, const std::vector<std::vector<int>>& prompts,
                                             int64_t max_new_tokens, const std::vector<int>& stop_ids,
                                             const ReplyEnded& reply_ended) {
  check_prompts(model, prompts, "generate_batch");
  torch::NoGradGuard no_grad;
  const int64_t context = model.config().max_position_embeddings;
  std::vector<std::vector<int>> replies(prompts.size());
  // Rows in batch order: which prompt each is. A prompt that already fills the context gets no reply.
  std::vector<size_t> owner;
  std::vector<const std::vector<int>*> rows;
  for (size_t p = 0; p < prompts.size(); ++p)
    if (max_new_tokens > 0 && int64_t(prompts[p].size()) <= context) owner.push_back(p), rows.push_back(&prompts[p]);
  if (rows.empty()) return replies;
  RowBatch batch(model, rows);
  while (!owner.empty()) {
    auto next = batch.step().to(torch::kFloat32).argmax(-1).cpu();
    std::vector<int64_t> keep, tokens;
    std::vector<size_t> still;
    for (size_t r = 0; r < owner.size(); ++r) {
      const int token = static_cast<int>(next[int64_t(r)].item<int64_t>());
      if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) continue;
      auto& reply = replies[owner[r]];
      reply.push_back(token);
      if (reply_ended && reply_ended(reply)) continue;
      // generate()'s rule: another token while under max_new_tokens and the fed token's position is in context.
      if (int64_t(reply.size()) < max_new_tokens && int64_t(prompts[owner[r]].size() + reply.size()) <= context)
        keep.push_back(int64_t(r)), tokens.push_back(token), still.push_back(owner[r]);
    }
    owner = std::move(still);
    if (!owner.empty()) batch.advance(keep, tokens);
  }
  return replies;
}

std::vector<int> beam_search(BackboneImpl& model, const std::vector<int>& prompt, int64_t num_beams,
                             int64_t max_new_tokens, const std::vector<int>& stop_ids, double length_penalty) {
  return beam_search_batch(model, {prompt}, num_beams, max_new_tokens, stop_ids, length_penalty).front();
}

std::vector<std::vector<int>> beam_search_batch(BackboneImpl& model, const std::vector<std::vector<int>>& prompts,
                                                int64_t num_beams, int64_t max_new_tokens,
                                                const std::vector<int>& stop_ids, double length_penalty) {
  check_prompts(model, prompts, "beam_search");
  if (num_beams < 1) throw std::invalid_argument("beam_search needs num_beams >= 1");
  torch::NoGradGuard no_grad;
  const int64_t context = model.config().max_position_embeddings;
  auto is_stop = [&](int token) { return std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end(); };
  std::vector<BeamPrompt> live, done;
  std::vector<const std::vector<int>*> rows;
  for (size_t p = 0; p < prompts.size(); ++p) {
    BeamPrompt beam;
    beam.index = p, beam.length = int64_t(prompts[p].size());
    if (max_new_tokens > 0 && beam.length <= context) live.push_back(beam), rows.push_back(&prompts[p]);
    else done.push_back(beam);
  }
  std::vector<std::vector<int>> results(prompts.size());
  if (!live.empty()) {
    RowBatch batch(model, rows);
    for (int64_t step = 0; !live.empty(); ++step) {
      auto logprobs = torch::log_softmax(batch.step().to(torch::kFloat64), -1);
      const int64_t vocab = logprobs.size(-1);
      std::vector<int64_t> source, tokens;
      std::vector<BeamPrompt> still;
      int64_t offset = 0;  // the prompt's first row
      for (auto& prompt : live) {
        const int64_t rows_here = int64_t(prompt.beams.size());
        auto totals = logprobs.narrow(0, offset, rows_here) +
                      torch::tensor(prompt.beam_logprob, torch::kFloat64).to(logprobs.device()).unsqueeze(1);
        // Twice the beams, as Hugging Face does, so that enough live candidates remain after stops.
        auto [values, indices] = totals.flatten().topk(std::min<int64_t>(2 * num_beams, totals.numel()));
        values = values.cpu().contiguous(), indices = indices.cpu().contiguous();
        std::vector<std::vector<int>> next_beams;
        std::vector<double> next_logprob;
        std::vector<int64_t> next_source;
        for (int64_t k = 0; k < values.size(0) && int64_t(next_beams.size()) < num_beams; ++k) {
          const int64_t beam = indices.data_ptr<int64_t>()[k] / vocab;
          const int token = static_cast<int>(indices.data_ptr<int64_t>()[k] % vocab);
          const double total = values.data_ptr<double>()[k];
          const auto& tokens_so_far = prompt.beams[size_t(beam)];
          if (is_stop(token)) {
            // Only a stop among the top num_beams candidates ends a hypothesis (Hugging Face's rule).
            if (k < num_beams) prompt.finished.push_back({tokens_so_far, normalised(total, tokens_so_far.size(), length_penalty)});
            continue;
          }
          next_beams.push_back(tokens_so_far);
          next_beams.back().push_back(token);
          next_logprob.push_back(total);
          next_source.push_back(offset + beam);
        }
        offset += rows_here;
        if (prompt.finished.size() > size_t(num_beams)) {
          std::sort(prompt.finished.begin(), prompt.finished.end(),
                    [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
          prompt.finished.resize(size_t(num_beams));
        }
        prompt.beams = std::move(next_beams), prompt.beam_logprob = std::move(next_logprob);
        bool finished = prompt.beams.empty();
        if (!finished) {
          // Done when enough have finished and no live beam can still beat the worst of them, or out of room.
          const double best_live = *std::max_element(prompt.beam_logprob.begin(), prompt.beam_logprob.end());
          finished = (int64_t(prompt.finished.size()) >= num_beams &&
                      normalised(best_live, prompt.beams[0].size(), length_penalty) < prompt.worst_finished()) ||
                     step + 1 >= max_new_tokens || prompt.length + step + 1 > context;
        }
        if (finished) {
          done.push_back(std::move(prompt));
          continue;
        }
        source.insert(source.end(), next_source.begin(), next_source.end());
        for (const auto& b : prompt.beams) tokens.push_back(b.back());
        still.push_back(std::move(prompt));
      }
      live = std::move(still);
      if (!live.empty()) batch.advance(source, tokens);
    }
  }
  for (auto& prompt : done) {
    for (size_t b = 0; b < prompt.beams.size(); ++b)
      prompt.finished.push_back({prompt.beams[b], normalised(prompt.beam_logprob[b], prompt.beams[b].size(), length_penalty)});
    if (prompt.finished.empty()) continue;
    results[prompt.index] = std::max_element(prompt.finished.begin(), prompt.finished.end(),
                                             [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; })
                                ->tokens;
  }
  return results;
}

}  // namespace peftlab
