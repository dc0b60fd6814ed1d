// llama2.c checkpoints in the legacy layout (karpathy/llama2.c run.c): a header of seven int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means a separate
// output classifier follows the weights), then float32 weights in a fixed order.
#pragma once

#include <filesystem>

#include "core/llama.h"

namespace peftlab {

// Reads and validates the header against the file size; no weights are read.
LlamaConfig read_llama2c_config(const std::filesystem::path& file);

// Loads the whole model. The weights keep llama2.c's interleaved rotary layout (config.rope_interleaved).
Llama load_llama2c(const std::filesystem::path& file);

// Rows of a q or k weight reordered from llama2.c's interleaved rotary pairs to Hugging Face's rotate-half
// layout (and back with `inverse`), per head.
torch::Tensor permute_rotary_rows(const torch::Tensor& weight, int64_t n_heads, bool inverse = false);

}  // namespace peftlab
