// llama2.c checkpoints (the llama family) in the legacy layout (karpathy/llama2.c run.c): a header of seven int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means a separate
// output classifier follows the weights), then float32 weights in a fixed order.
#pragma once

#include <filesystem>

#include "core/backbone.h"

namespace peftlab {

// Reads and validates the header against the file size; no weights are read. The config is the llama
// family's, with llama2.c's interleaved rotary layout.
BackboneConfigPtr read_llama2c_config(const std::filesystem::path& file);

// Loads the whole model. The weights keep llama2.c's interleaved rotary layout; write_hf_folder and the PEFT
// export permute q/k rows to Hugging Face's.
Backbone load_llama2c(const std::filesystem::path& file);

}  // namespace peftlab
