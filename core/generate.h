// Text generation with a KV cache: greedy by default, temperature and top-p (nucleus) sampling with a seed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/backbone.h"

namespace peftlab {

class Tokenizer;

// Whether a reply (the new tokens so far) is complete: generation of that reply ends after the token that made
// it so (the token stays in the reply).
using ReplyEnded = std::function<bool(const std::vector<int>& reply)>;

// A reply is complete once its decoded text contains any of `strings` (transformers' stop_strings,
// lm-evaluation-harness's `until`). The text after the string is the caller's to cut. No strings: never.
ReplyEnded reply_contains_any(const Tokenizer& tokenizer, std::vector<std::string> strings);

struct GenerationOptions {
  int64_t max_new_tokens = 256;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;        // nucleus sampling mass (with temperature > 0)
  uint64_t seed = 0;
  std::vector<int> stop_ids;  // generation ends after any of these (not included in the output)
  ReplyEnded reply_ended;     // and, when set, once this holds (e.g. reply_contains_any's stop strings)
};

// Picks the next token from one row of logits (vocab). Greedy when temperature is 0.
int64_t sample_next_token(const torch::Tensor& logits, const GenerationOptions& options, torch::Generator& generator);

// Continues `prompt` (non-empty) and returns only the new tokens. `on_token` sees each as it is chosen.
// Stops at a stop id, once options.reply_ended holds, after max_new_tokens, or at the model's context length.
std::vector<int> generate(BackboneImpl& model, const std::vector<int>& prompt, const GenerationOptions& options,
                          const std::function<void(int)>& on_token = {});

// Greedy continuation of many prompts at once: one batch, the shorter prompts padded on the left, one KV cache,
// each row ending on its own (a stop id, reply_ended, max_new_tokens, the context) and leaving the batch when it
// does. The replies of generate() with greedy options, one prompt at a time. An empty prompt is
// std::invalid_argument.
std::vector<std::vector<int>> generate_batch(BackboneImpl& model, const std::vector<std::vector<int>>& prompts,
                                             int64_t max_new_tokens, const std::vector<int>& stop_ids,
                                             const ReplyEnded& reply_ended = {});

// Beam search (Hugging Face generate()'s num_beams with its defaults: length_penalty 1, early_stopping false):
// keeps `num_beams` hypotheses, a hypothesis ends at a stop id, and the reply with the best
// sum-of-log-probabilities / new-token-count wins. Returns the new tokens (without the stop id).
std::vector<int> beam_search(BackboneImpl& model, const std::vector<int>& prompt, int64_t num_beams,
                             int64_t max_new_tokens, const std::vector<int>& stop_ids, double length_penalty = 1.0);

// Beam search over many prompts at once (every prompt's beams in one left-padded batch), each prompt's result
// as beam_search() gives it alone.
std::vector<std::vector<int>> beam_search_batch(BackboneImpl& model, const std::vector<std::vector<int>>& prompts,
                                                int64_t num_beams, int64_t max_new_tokens,
                                                const std::vector<int>& stop_ids, double length_penalty = 1.0);

}  // namespace peftlab
