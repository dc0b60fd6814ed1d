// A tokenizer as Hugging Face's tokenizers library runs one: added tokens found first, then the normalizer,
// the pre-tokenizer and the model on the text between them; ids back to text through the decoder. Every format
// but SentencePiece's .model is read into one (tokenizer.json, vocab.json + merges.txt, tiktoken, vocab.txt).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/added_tokens.h"
#include "core/pre_tokenizers.h"
#include "core/text_normalizers.h"
#include "core/token_decoders.h"
#include "core/token_model.h"
#include "core/tokenizer.h"

namespace peftlab {

struct TokenizerConfig;

class PipelineTokenizer : public Tokenizer {
 public:
  struct Parts {
    std::unique_ptr<TextNormalizer> normalizer;    // may be null
    std::unique_ptr<PreTokenizer> pre_tokenizer;   // may be null: the whole text is one word
    std::unique_ptr<TokenModel> model;
    std::unique_ptr<TokenDecoder> decoder;         // may be null: tokens joined with spaces
    std::vector<AddedToken> added_tokens;
  };
  // The special tokens' roles as the format gives them, before a tokenizer_config.json has its say.
  struct Specials {
    std::string bos, eos, pad;  // token names; empty or absent from the vocabulary: none
    bool adds_bos = false, adds_eos = false;
    std::optional<SpecialTokenTemplate> special_template;  // else [BOS] A [EOS] from the above
  };

  // `files`: what was read, for the checksum. A tokenizer_config.json (`config`, may be null) overrides the
  // roles and, when it says add_bos_token or add_eos_token, the template. Throws InputError naming the config
  // when it names a token the vocabulary lacks.
  PipelineTokenizer(Parts parts, const std::vector<std::filesystem::path>& files, std::string format,
                    const Specials& specials, const TokenizerConfig* config);

  std::string decode(const std::vector<int>& ids) const override;
  std::string piece(int id) const override;
  int token_id(const std::string& piece) const override;

 protected:
  std::vector<int> encode_text(const std::string& text) const override;

 private:
  void tokenize_words(const std::string& normalized, std::vector<int>& ids) const;

  Parts parts_;
  AddedTokens added_;
};

// Roles for formats that name none: the usual names among the special added tokens (<s> and </s>,
// <|begin_of_text|> and <|end_of_text|>, <|endoftext|> for both, [CLS] and [SEP]; <pad>, [PAD], <|padding|>).
PipelineTokenizer::Specials usual_special_roles(const std::vector<AddedToken>& added);

}  // namespace peftlab
