// tiktoken-format BPE files (Llama 3's tokenizer.model): one "<base64 token> <rank>" per line.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/tokenizer.h"

namespace peftlab {

struct TokenizerConfig;

// Whether the first bytes of a file read as tiktoken lines (a SentencePiece model is binary protobuf).
bool looks_like_tiktoken(const std::string& head);

// Llama 3's pre-tokenizer regex; special tokens from the config's added_tokens_decoder (may be null), else
// Meta's 256 special tokens from id 128000.
std::shared_ptr<Tokenizer> load_tiktoken(const std::filesystem::path& file, const TokenizerConfig* config);

}  // namespace peftlab
