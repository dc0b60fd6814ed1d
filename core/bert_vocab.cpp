#include "core/bert_vocab.h"

#include <fstream>

#include "core/errors.h"
#include "core/pipeline_tokenizer.h"
#include "core/tokenizer_config.h"
#include "core/wordpiece_model.h"

namespace peftlab {

namespace fs = std::filesystem;

std::shared_ptr<Tokenizer> load_bert_vocab(const fs::path& file, const TokenizerConfig* config) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), "cannot open");
  std::unordered_map<std::string, int> vocab;
  std::string line;
  int id = 0;
  for (; std::getline(in, line); ++id) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab[line] = id;
  }
  if (vocab.empty()) throw InputError(file.string(), "no tokens");

  const bool lowercase = config != nullptr ? config->do_lower_case.value_or(true) : true;
  const bool strip_accents = config != nullptr ? config->strip_accents.value_or(lowercase) : lowercase;
  const bool chinese = config != nullptr ? config->tokenize_chinese_chars.value_or(true) : true;

  PipelineTokenizer::Parts parts;
  for (const char* name : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    auto it = vocab.find(name);
    if (it == vocab.end()) continue;
    AddedToken special;
    special.id = it->second;
    special.content = name;
    parts.added_tokens.push_back(special);
  }
  if (config != nullptr)
    for (const auto& token : config->added_tokens)
      if (vocab.count(token.content) == 0 || token.id != vocab[token.content]) parts.added_tokens.push_back(token);
  try {
    parts.model = std::make_unique<WordPieceModel>(std::move(vocab), "[UNK]");
  } catch (const std::invalid_argument& e) {
    throw InputError(file.string(), e.what());
  }
  parts.normalizer = std::make_unique<BertNormalizer>(true, chinese, strip_accents, lowercase);
  parts.pre_tokenizer = std::make_unique<BertPreTokenizer>();
  parts.decoder = std::make_unique<WordPieceDecoder>("##", true);

  PipelineTokenizer::Specials specials;
  specials.bos = "[CLS]";
  specials.eos = "[SEP]";
  specials.pad = "[PAD]";
  specials.adds_bos = specials.adds_eos = true;
  // [CLS] A [SEP] and [CLS] A [SEP] B [SEP], the second text and its [SEP] of type 1.
  const int cls = parts.model->token_id("[CLS]"), sep = parts.model->token_id("[SEP]");
  if (cls >= 0 && sep >= 0) {
    using Item = SpecialTokenTemplate::Item;
    SpecialTokenTemplate t;
    t.single = {Item{{cls}, 0, 0}, Item{{}, 0, 0}, Item{{sep}, 0, 0}};
    t.pair = {Item{{cls}, 0, 0}, Item{{}, 0, 0}, Item{{sep}, 0, 0}, Item{{}, 1, 1}, Item{{sep}, 0, 1}};
    specials.special_template = t;
  }
  return std::make_shared<PipelineTokenizer>(std::move(parts), std::vector<fs::path>{file}, "vocab.txt", specials, config);
}

}  // namespace peftlab
