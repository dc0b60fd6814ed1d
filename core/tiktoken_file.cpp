#include "core/tiktoken_file.h"

#include <fmt/format.h>

#include <fstream>

#include "core/bpe_model.h"
#include "core/byte_level.h"
#include "core/errors.h"
#include "core/pipeline_tokenizer.h"
#include "core/token_model.h"
#include "core/tokenizer_config.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

// Llama 3's pre-tokenizer (tiktoken's cl100k_base pattern): like GPT-2's, with case-insensitive contractions,
// numbers in groups of up to three digits, and newlines kept together with what precedes them.
const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with '=' padding; false when `text` is not.
bool decode_base64(const std::string& text, std::string& bytes) {
  bytes.clear();
  if (text.empty() || text.size() % 4 != 0) return false;
  uint32_t buffer = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=') {
      if (i + 2 < text.size()) return false;  // padding only in the last two places
      ++padding;
      continue;
    }
    if (padding > 0) return false;
    const int v = base64_value(text[i]);
    if (v < 0) return false;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return !bytes.empty();
}

// Splits "<token> <rank>"; false when the line is not that.
bool parse_line(const std::string& line, std::string& token, long& rank) {
  const size_t space = line.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == line.size()) return false;
  const std::string number = line.substr(space + 1);
  if (number.size() > 9 || number.find_first_not_of("0123456789") != std::string::npos) return false;
  token = line.substr(0, space);
  rank = std::stol(number);
  return rank < kMaxTokenId;
}

// Meta's special tokens of Llama 3, from id 128000 (after the 128000 ranks).
std::vector<std::string> llama3_special_tokens() {
  std::vector<std::string> names = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                    "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                                    "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                    "<|reserved_special_token_4|>", "<|eot_id|>"};
  for (int i = 5; i < 256 - 5; ++i) names.push_back(fmt::format("<|reserved_special_token_{}|>", i));
  return names;
}

}  // namespace

bool looks_like_tiktoken(const std::string& head) {
  const size_t end = head.find('\n');
  if (end == std::string::npos) return false;
  std::string line = head.substr(0, end), token, bytes;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  long rank = 0;
  return parse_line(line, token, rank) && decode_base64(token, bytes);
}

std::shared_ptr<Tokenizer> load_tiktoken(const fs::path& file, const TokenizerConfig* config) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), "cannot open");
  BpeModel::Vocab vocab;
  std::string line, token, bytes;
  long rank = 0;
  for (long number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (!parse_line(line, token, rank) || !decode_base64(token, bytes))
      throw InputError(file.string(), fmt::format("not \"<base64 token> <rank>\" with a rank below {}", kMaxTokenId), number);
    if (!vocab.emplace(bytes_to_byte_level(bytes), static_cast<int>(rank)).second)
      throw InputError(file.string(), "the same token twice", number);
  }
  if (vocab.empty()) throw InputError(file.string(), "no tokens");
  for (int b = 0; b < 256; ++b)
    if (vocab.count(bytes_to_byte_level(std::string(1, static_cast<char>(b)))) == 0)
      input_error(file.string(), "byte 0x{:02X} has no token of its own, so some text could not be encoded", b);

  PipelineTokenizer::Parts parts;
  if (config != nullptr && !config->added_tokens.empty()) {
    parts.added_tokens = config->added_tokens;
  } else {
    int id = 0;
    for (const auto& [t, r] : vocab) id = std::max(id, r + 1);
    for (const auto& name : llama3_special_tokens()) {
      AddedToken special;
      special.id = id++;
      special.content = name;
      parts.added_tokens.push_back(special);
    }
  }
  BpeOptions options;
  options.ignore_merges = true;  // a piece that is itself a token is that token, as tiktoken encodes
  options.merge_by_joined_rank = true;
  parts.model = std::make_unique<BpeModel>(std::move(vocab), BpeModel::MergeTable{}, options);
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  steps.push_back(std::make_unique<RegexSplitPreTokenizer>(kLlama3Pattern, DelimiterBehavior::Isolated, false));
  steps.push_back(std::make_unique<ByteLevelPreTokenizer>(false, false));
  parts.pre_tokenizer = std::make_unique<SequencePreTokenizer>(std::move(steps));
  parts.decoder = std::make_unique<ByteLevelDecoder>();

  PipelineTokenizer::Specials specials = usual_special_roles(parts.added_tokens);
  specials.adds_bos = true;  // Llama 3 puts <|begin_of_text|> before every text
  return std::make_shared<PipelineTokenizer>(std::move(parts), std::vector<fs::path>{file}, "tiktoken", specials, config);
}

}  // namespace peftlab
