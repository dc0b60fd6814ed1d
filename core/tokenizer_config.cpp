#include "core/tokenizer_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "core/errors.h"
#include "core/token_model.h"
#include "core/tokenizer.h"

namespace peftlab {

using nlohmann::json;

namespace {

std::optional<bool> optional_bool(const json& object, const char* key, const std::string& file) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) input_error(file, "\"{}\" is not true or false", key);
  return it->get<bool>();
}

// A token given as a string, as {"content": ...} (an AddedToken), or null (none).
std::optional<std::string> optional_token(const json& object, const char* key, const std::string& file) {
  auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  input_error(file, "\"{}\" is not a token (a string, or an object with \"content\")", key);
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(file, "cannot open");
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    input_error(file, "not valid JSON: {}", e.what());
  }
  if (!root.is_object()) input_error(file, "not a JSON object");
  TokenizerConfig config;
  config.path = path;
  config.checksum = sha256_file(path);
  if (auto it = root.find("tokenizer_class"); it != root.end() && it->is_string()) config.tokenizer_class = it->get<std::string>();
  config.add_bos_token = optional_bool(root, "add_bos_token", file);
  config.add_eos_token = optional_bool(root, "add_eos_token", file);
  config.do_lower_case = optional_bool(root, "do_lower_case", file);
  config.strip_accents = optional_bool(root, "strip_accents", file);
  config.tokenize_chinese_chars = optional_bool(root, "tokenize_chinese_chars", file);
  config.bos_token = optional_token(root, "bos_token", file);
  config.eos_token = optional_token(root, "eos_token", file);
  config.pad_token = optional_token(root, "pad_token", file);
  config.unk_token = optional_token(root, "unk_token", file);
  if (auto it = root.find("added_tokens_decoder"); it != root.end() && !it->is_null()) {
    if (!it->is_object()) input_error(file, "\"added_tokens_decoder\" is not an object");
    for (const auto& [key, value] : it->items()) {
      AddedToken token;
      try {
        size_t used = 0;
        token.id = std::stoi(key, &used);
        if (used != key.size() || token.id < 0 || token.id >= kMaxTokenId) throw std::invalid_argument(key);
      } catch (const std::exception&) {
        input_error(file, "added_tokens_decoder key \"{}\" is not a token id from 0 to {}", key, kMaxTokenId - 1);
      }
      if (!value.is_object() || !value.contains("content") || !value["content"].is_string())
        input_error(file, "added token {} has no \"content\" string", key);
      token.content = value["content"].get<std::string>();
      token.special = optional_bool(value, "special", file).value_or(false);
      token.single_word = optional_bool(value, "single_word", file).value_or(false);
      token.lstrip = optional_bool(value, "lstrip", file).value_or(false);
      token.rstrip = optional_bool(value, "rstrip", file).value_or(false);
      token.normalized = optional_bool(value, "normalized", file).value_or(!token.special);
      config.added_tokens.push_back(token);
    }
    std::sort(config.added_tokens.begin(), config.added_tokens.end(),
              [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  }
  return config;
}

void apply_config_specials(const TokenizerConfig& config, const Tokenizer& tokenizer, int& bos_id, int& eos_id,
                           int& pad_id, bool& adds_bos, bool& adds_eos) {
  auto resolve = [&](const std::optional<std::string>& name, const char* key, int& id) {
    if (!name) return;
    if (name->empty()) {
      id = -1;
      return;
    }
    id = tokenizer.token_id(*name);
    if (id < 0) input_error(config.path.string(), "{} \"{}\" is not in the tokenizer's vocabulary", key, *name);
  };
  resolve(config.bos_token, "bos_token", bos_id);
  resolve(config.eos_token, "eos_token", eos_id);
  resolve(config.pad_token, "pad_token", pad_id);
  if (config.add_bos_token) adds_bos = *config.add_bos_token;
  if (config.add_eos_token) adds_eos = *config.add_eos_token;
}

}  // namespace peftlab
