// The byte-level BPE pair vocab.json + merges.txt of GPT-2 and its descendants (RoBERTa, Qwen2).
#pragma once

#include <filesystem>
#include <memory>

#include "core/tokenizer.h"

namespace peftlab {

struct TokenizerConfig;

// GPT-2's pre-tokenizer regex, or Qwen2's (with NFC) when the config's tokenizer_class is Qwen2Tokenizer; added
// tokens from the config's added_tokens_decoder (may be null). merges.txt may start with a "#version" line.
std::shared_ptr<Tokenizer> load_vocab_merges(const std::filesystem::path& vocab_json,
                                             const std::filesystem::path& merges_txt, const TokenizerConfig* config);

}  // namespace peftlab
