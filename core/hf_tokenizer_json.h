// Hugging Face tokenizer.json: normalizer, pre-tokenizer, BPE or WordPiece model, post-processor and decoder
// (docs/tokenizers.md lists the component types read).
#pragma once

#include <filesystem>
#include <memory>

#include "core/tokenizer.h"

namespace peftlab {

struct TokenizerConfig;

// `config` (may be null): a tokenizer_config.json beside the file. Throws InputError naming the file when it is
// malformed or uses a component this reader does not have.
std::shared_ptr<Tokenizer> load_hf_tokenizer_json(const std::filesystem::path& file, const TokenizerConfig* config);

}  // namespace peftlab
