#include "core/pipeline_tokenizer.h"

#include <fmt/format.h>

#include <stdexcept>

#include "core/checksum.h"
#include "core/errors.h"
#include "core/tokenizer_config.h"

namespace peftlab {

PipelineTokenizer::PipelineTokenizer(Parts parts, const std::vector<std::filesystem::path>& files, std::string format,
                                     const Specials& specials, const TokenizerConfig* config)
    : parts_(std::move(parts)) {
  added_ = AddedTokens(parts_.added_tokens, parts_.normalizer.get());
  path_ = files.front();
  format_ = std::move(format);
  std::vector<std::filesystem::path> all = files;
  if (config != nullptr) all.push_back(config->path);
  if (all.size() == 1) {
    checksum_ = sha256_file(path_);
  } else {
    std::string listing;
    for (const auto& file : all) listing += file.filename().string() + " " + sha256_file(file) + "\n";
    checksum_ = sha256_bytes(listing);
  }
  vocab_size_ = parts_.model->size();
  for (const auto& token : added_.tokens()) vocab_size_ = std::max(vocab_size_, token.id + 1);

  bos_id_ = specials.bos.empty() ? -1 : token_id(specials.bos);
  eos_id_ = specials.eos.empty() ? -1 : token_id(specials.eos);
  pad_id_ = specials.pad.empty() ? -1 : token_id(specials.pad);
  adds_bos_ = specials.adds_bos;
  adds_eos_ = specials.adds_eos;
  bool flags_from_config = false;
  if (config != nullptr) {
    apply_config_specials(*config, *this, bos_id_, eos_id_, pad_id_, adds_bos_, adds_eos_);
    flags_from_config = config->add_bos_token.has_value() || config->add_eos_token.has_value();
  }
  if (specials.special_template && !flags_from_config)
    template_ = *specials.special_template;
  else
    set_template_from_bos_eos();
}

void PipelineTokenizer::tokenize_words(const std::string& normalized, std::vector<int>& ids) const {
  std::vector<std::string> words{normalized};
  if (parts_.pre_tokenizer) parts_.pre_tokenizer->split(words);
  for (const auto& word : words) parts_.model->tokenize(word, ids);
}

std::vector<int> PipelineTokenizer::encode_text(const std::string& text) const {
  std::vector<int> ids;
  for (const auto& raw : added_.split_raw(text)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    const std::string normalized = parts_.normalizer ? parts_.normalizer->normalize(raw.text) : raw.text;
    for (const auto& segment : added_.split_normalized(normalized)) {
      if (segment.id >= 0)
        ids.push_back(segment.id);
      else
        tokenize_words(segment.text, ids);
    }
  }
  return ids;
}

std::string PipelineTokenizer::piece(int id) const {
  if (const AddedToken* token = added_.find(id)) return token->content;
  if (const std::string* token = parts_.model->token_of(id)) return *token;
  throw std::out_of_range(fmt::format("token id {} is not in the vocabulary", id));
}

int PipelineTokenizer::token_id(const std::string& piece) const {
  const int id = added_.id_of(piece);
  return id >= 0 ? id : parts_.model->token_id(piece);
}

std::string PipelineTokenizer::decode(const std::vector<int>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    const AddedToken* added = added_.find(id);
    if (added != nullptr && added->special) continue;
    tokens.push_back(piece(id));
  }
  if (parts_.decoder) {
    parts_.decoder->decode(tokens);
    std::string text;
    for (const auto& t : tokens) text += t;
    return text;
  }
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) text += (i > 0 ? " " : "") + tokens[i];
  return text;
}

PipelineTokenizer::Specials usual_special_roles(const std::vector<AddedToken>& added) {
  PipelineTokenizer::Specials specials;
  auto first_present = [&](std::initializer_list<const char*> names) -> std::string {
    for (const char* name : names)
      for (const auto& token : added)
        if (token.special && token.content == name) return name;
    return "";
  };
  specials.bos = first_present({"<s>", "<|begin_of_text|>", "<bos>", "[CLS]", "<|endoftext|>"});
  specials.eos = first_present({"</s>", "<|end_of_text|>", "<eos>", "[SEP]", "<|endoftext|>"});
  specials.pad = first_present({"<pad>", "[PAD]", "<|padding|>", "<|pad|>"});
  return specials;
}

}  // namespace peftlab
