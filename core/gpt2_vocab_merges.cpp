#include "core/gpt2_vocab_merges.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/bpe_model.h"
#include "core/errors.h"
#include "core/pipeline_tokenizer.h"
#include "core/token_model.h"
#include "core/tokenizer_config.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

// Qwen2's pre-tokenizer: GPT-2's with case-insensitive contractions, single digits, and newlines kept
// together with what precedes them.
const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

BpeModel::Vocab read_vocab_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot open");
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path.string(), std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) throw InputError(path.string(), "not a JSON object of token -> id");
  BpeModel::Vocab vocab;
  vocab.reserve(root.size());
  for (const auto& [token, id] : root.items()) {
    if (!id.is_number_integer() || id.get<long long>() < 0 || id.get<long long>() >= kMaxTokenId)
      input_error(path.string(), "the id of \"{}\" is not an integer from 0 to {}", token, kMaxTokenId - 1);
    vocab.emplace(token, id.get<int>());
  }
  return vocab;
}

// One "left right" pair per line; a first line "#version: ..." and empty lines are skipped.
std::vector<std::pair<std::string, std::string>> read_merges_txt(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot open");
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  for (long number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (number == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() || line.find(' ', space + 1) != std::string::npos)
      throw InputError(path.string(), "not two tokens separated by one space", number);
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

}  // namespace

std::shared_ptr<Tokenizer> load_vocab_merges(const fs::path& vocab_json, const fs::path& merges_txt,
                                             const TokenizerConfig* config) {
  if (!fs::is_regular_file(vocab_json)) throw InputError(vocab_json.string(), "no such file (it goes with merges.txt)");
  if (!fs::is_regular_file(merges_txt)) throw InputError(merges_txt.string(), "no such file (it goes with vocab.json)");
  BpeModel::Vocab vocab = read_vocab_json(vocab_json);
  const auto merges = read_merges_txt(merges_txt);

  PipelineTokenizer::Parts parts;
  // Tokens of the config's added_tokens_decoder; else GPT-2's one special token when the vocabulary has it.
  if (config != nullptr && !config->added_tokens.empty()) {
    parts.added_tokens = config->added_tokens;
  } else if (auto it = vocab.find("<|endoftext|>"); it != vocab.end()) {
    AddedToken eot;
    eot.id = it->second;
    eot.content = it->first;
    parts.added_tokens.push_back(eot);
  }
  try {
    parts.model = std::make_unique<BpeModel>(std::move(vocab), merges, BpeOptions{});
  } catch (const std::invalid_argument& e) {
    throw InputError(merges_txt.string(), e.what());
  }
  const bool qwen2 = config != nullptr && config->tokenizer_class.rfind("Qwen2Tokenizer", 0) == 0;
  if (qwen2) {
    parts.normalizer = std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(std::make_unique<RegexSplitPreTokenizer>(kQwen2Pattern, DelimiterBehavior::Isolated, false));
    steps.push_back(std::make_unique<ByteLevelPreTokenizer>(false, false));
    parts.pre_tokenizer = std::make_unique<SequencePreTokenizer>(std::move(steps));
  } else {
    parts.pre_tokenizer = std::make_unique<ByteLevelPreTokenizer>(false, true);
  }
  parts.decoder = std::make_unique<ByteLevelDecoder>();
  PipelineTokenizer::Specials specials = usual_special_roles(parts.added_tokens);
  return std::make_shared<PipelineTokenizer>(std::move(parts), std::vector<fs::path>{vocab_json, merges_txt},
                                             "vocab.json+merges.txt", specials, config);
}

}  // namespace peftlab
