// Causal language modelling on a plain-text corpus (task name `lm`), for domain-adaptation comparisons.
//
// Options: train_file (default <data root>/corpora/tinyshakespeare.txt), eval_file (default: none, the last
// eval_fraction of train_file, cut at a line start, is held out as "dev"), eval_fraction (default 0.1),
// block_size (tokens per block, default max_seq_len, default 128).
//
// Examples: the split's text is tokenised once (BOS first) and cut into blocks of block_size tokens that
// overlap by one token (stride block_size - 1), so every token after the first is predicted exactly once.
// labels = input_ids with labels[0] = -100 (Hugging Face's shift: logits at t predict labels[t + 1]).
// byte_count = UTF-8 bytes of the tokens the block predicts (SentencePiece pieces, "▁" counted as one
// space, byte-fallback pieces as one byte), so that bits per byte sums exactly over blocks.
// max_train_examples / max_eval_examples cap the number of blocks.
//
// Score: predictions = summed NLL (nats) of each block's predicted tokens; metrics perplexity,
// bits_per_byte (= total NLL / (ln 2 * total bytes)) and nll_per_token.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/tokenizer.h"

namespace peftlab {

// UTF-8 bytes of the text token `id` stands for (0 for control tokens such as BOS and EOS).
int64_t token_byte_count(const Tokenizer& tokenizer, int id);

// One token stream (BOS first when the tokenizer has one) cut into blocks of `block_size` tokens overlapping
// by one, labels = input_ids with the first -100, byte counts of the predicted tokens; at most `cap` blocks
// (0: all); example_index numbered from `first_index`.
std::vector<TokenizedExample> causal_lm_blocks(const std::vector<int>& stream, int64_t block_size, int64_t cap,
                                               const Tokenizer& tokenizer, int64_t first_index = 0);
// Perplexity, bits per byte and NLL per token of blocks given each block's summed NLL.
std::map<std::string, double> causal_lm_score(const std::vector<TokenizedExample>& blocks,
                                              const std::vector<double>& nll);

// Summed NLL, predicted-token and byte counts -> {"perplexity", "bits_per_byte", "nll_per_token"}.
std::map<std::string, double> language_model_metrics(double nll_sum, double token_count, double byte_count);

}  // namespace peftlab
