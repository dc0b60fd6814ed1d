// tokenizer_config.json, the Hugging Face file beside a tokenizer that names the family's special tokens,
// says whether BOS/EOS are added, and lists added tokens (added_tokens_decoder).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace peftlab {

class Tokenizer;

// A token matched in text before the model sees it (Hugging Face "added token").
struct AddedToken {
  int id = -1;
  std::string content;
  bool special = true;       // special tokens give no text when decoded
  bool single_word = false;  // matches only as a whole word
  bool lstrip = false;       // the match takes the whitespace before it
  bool rstrip = false;       // ... and after it
  bool normalized = false;   // matched in the normalized text rather than the raw text
};

struct TokenizerConfig {
  std::filesystem::path path;
  std::string checksum;  // SHA-256 of the file
  std::string tokenizer_class;
  std::optional<bool> add_bos_token, add_eos_token;
  // Absent: not said; "": said to be none (JSON null).
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> do_lower_case, strip_accents, tokenize_chinese_chars;
  std::vector<AddedToken> added_tokens;  // from added_tokens_decoder, by id
};

// Throws InputError naming the file when it is not such a JSON object.
TokenizerConfig read_tokenizer_config(const std::filesystem::path& file);

// Sets bos/eos/pad from the config's token names (looked up in `tokenizer`) and adds_bos/adds_eos from its
// add_bos_token/add_eos_token, leaving what the config does not say. Throws InputError naming the config when a
// named token is not in the vocabulary.
void apply_config_specials(const TokenizerConfig& config, const Tokenizer& tokenizer, int& bos_id, int& eos_id,
                           int& pad_id, bool& adds_bos, bool& adds_eos);

}  // namespace peftlab
