// BERT's vocab.txt (one WordPiece entry per line, the id is the line number from 0).
#pragma once

#include <filesystem>
#include <memory>

#include "core/tokenizer.h"

namespace peftlab {

struct TokenizerConfig;

// BERT's basic tokenizer then WordPiece. Lower-casing follows the config's do_lower_case (default true, as
// BertTokenizer's); accents are stripped when lower-casing unless strip_accents says otherwise.
std::shared_ptr<Tokenizer> load_bert_vocab(const std::filesystem::path& file, const TokenizerConfig* config);

}  // namespace peftlab
