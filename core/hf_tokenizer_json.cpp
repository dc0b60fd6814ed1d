#include "core/hf_tokenizer_json.h"

#include <fmt/format.h>

#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "core/bpe_model.h"
#include "core/errors.h"
#include "core/pipeline_tokenizer.h"
#include "core/tokenizer_config.h"
#include "core/wordpiece_model.h"

namespace peftlab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Reads the parts of one tokenizer.json; every complaint names the file and the JSON path of the part.
class Reader {
 public:
  explicit Reader(const fs::path& file) : file_(file.string()) {}

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw InputError(file_, where.empty() ? what : where + ": " + what);
  }

  const json& field(const json& object, const char* key, const std::string& where) const {
    if (!object.is_object()) fail(where, "not a JSON object");
    auto it = object.find(key);
    if (it == object.end()) fail(where, fmt::format("no \"{}\"", key));
    return *it;
  }
  std::string string_field(const json& object, const char* key, const std::string& where) const {
    const json& v = field(object, key, where);
    if (!v.is_string()) fail(where, fmt::format("\"{}\" is not a string", key));
    return v.get<std::string>();
  }
  // Absent or null: `fallback`.
  std::string optional_string(const json& object, const char* key, const std::string& where,
                              const std::string& fallback = "") const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_string()) fail(where, fmt::format("\"{}\" is not a string", key));
    return it->get<std::string>();
  }
  bool optional_bool(const json& object, const char* key, const std::string& where, bool fallback) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where, fmt::format("\"{}\" is not true or false", key));
    return it->get<bool>();
  }
  int optional_int(const json& object, const char* key, const std::string& where, int fallback) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_number_integer()) fail(where, fmt::format("\"{}\" is not an integer", key));
    return it->get<int>();
  }
  std::string type_of(const json& object, const std::string& where) const { return string_field(object, "type", where); }

  // A {"String": s} or {"Regex": r} pattern, as a regex.
  std::string pattern(const json& object, const std::string& where) const {
    const json& p = field(object, "pattern", where);
    if (p.is_object() && p.contains("String") && p["String"].is_string()) return regex_escape(p["String"].get<std::string>());
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) return p["Regex"].get<std::string>();
    fail(where, "\"pattern\" is neither {\"String\": ...} nor {\"Regex\": ...}");
  }
  std::string literal_pattern(const json& object, const std::string& where) const {
    const json& p = field(object, "pattern", where);
    if (p.is_object() && p.contains("String") && p["String"].is_string()) return p["String"].get<std::string>();
    fail(where, "\"pattern\" is not {\"String\": ...} (a regex pattern here is not supported)");
  }
  template <typename T>
  T compiled(const std::string& where, const std::function<T()>& make) const {
    try {
      return make();
    } catch (const std::invalid_argument& e) {
      fail(where, e.what());
    }
  }

  std::unique_ptr<TextNormalizer> normalizer(const json& n, const std::string& where) const;
  std::unique_ptr<PreTokenizer> pre_tokenizer(const json& p, const std::string& where) const;
  std::unique_ptr<TokenDecoder> decoder(const json& d, const std::string& where) const;
  std::unique_ptr<TokenModel> model(const json& m, const std::string& where) const;
  std::vector<AddedToken> added_tokens(const json& list) const;
  // The post-processor's template; nullopt when it adds no special tokens (ByteLevel, or none).
  std::optional<SpecialTokenTemplate> post_processor(const json& p, const std::string& where,
                                                     const std::function<int(const std::string&)>& id_of) const;

 private:
  std::string file_;
};

std::unique_ptr<TextNormalizer> Reader::normalizer(const json& n, const std::string& where) const {
  const std::string type = type_of(n, where);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(string_field(n, "prepend", where));
  if (type == "Replace") {
    const std::string regex = pattern(n, where), content = string_field(n, "content", where);
    return compiled<std::unique_ptr<TextNormalizer>>(where, [&] { return std::make_unique<ReplaceNormalizer>(regex, content); });
  }
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(optional_bool(n, "strip_left", where, true), optional_bool(n, "strip_right", where, true));
  if (type == "BertNormalizer") {
    const bool lowercase = optional_bool(n, "lowercase", where, true);
    return std::make_unique<BertNormalizer>(optional_bool(n, "clean_text", where, true),
                                            optional_bool(n, "handle_chinese_chars", where, true),
                                            optional_bool(n, "strip_accents", where, lowercase), lowercase);
  }
  if (type == "Sequence") {
    const json& list = field(n, "normalizers", where);
    if (!list.is_array()) fail(where, "\"normalizers\" is not a list");
    std::vector<std::unique_ptr<TextNormalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(normalizer(list[i], fmt::format("{}.normalizers[{}]", where, i)));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail(where, fmt::format("normalizer type \"{}\" is not supported", type));
}

DelimiterBehavior behavior_of(const std::string& name, const Reader& reader, const std::string& where) {
  static const std::map<std::string, DelimiterBehavior> kBehaviors = {
      {"Removed", DelimiterBehavior::Removed},
      {"Isolated", DelimiterBehavior::Isolated},
      {"MergedWithPrevious", DelimiterBehavior::MergedWithPrevious},
      {"MergedWithNext", DelimiterBehavior::MergedWithNext},
      {"Contiguous", DelimiterBehavior::Contiguous}};
  auto it = kBehaviors.find(name);
  if (it == kBehaviors.end()) reader.fail(where, fmt::format("split behavior \"{}\" is not known", name));
  return it->second;
}

// Metaspace's prepend scheme: "prepend_scheme" in newer files, the boolean "add_prefix_space" in older ones.
std::string prepend_scheme(const json& p, const Reader& reader, const std::string& where) {
  if (p.contains("prepend_scheme")) return reader.string_field(p, "prepend_scheme", where);
  return reader.optional_bool(p, "add_prefix_space", where, true) ? "always" : "never";
}

std::unique_ptr<PreTokenizer> Reader::pre_tokenizer(const json& p, const std::string& where) const {
  const std::string type = type_of(p, where);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(optional_bool(p, "add_prefix_space", where, true),
                                                   optional_bool(p, "use_regex", where, true));
  if (type == "Split") {
    const std::string regex = pattern(p, where);
    const DelimiterBehavior behavior = behavior_of(string_field(p, "behavior", where), *this, where);
    const bool invert = optional_bool(p, "invert", where, false);
    return compiled<std::unique_ptr<PreTokenizer>>(where, [&] { return std::make_unique<RegexSplitPreTokenizer>(regex, behavior, invert); });
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  // Words and runs of other non-space characters.
  if (type == "Whitespace") return std::make_unique<RegexSplitPreTokenizer>(R"(\w+|[^\w\s]+)", DelimiterBehavior::Removed, true);
  if (type == "WhitespaceSplit") return std::make_unique<RegexSplitPreTokenizer>(R"(\s+)", DelimiterBehavior::Removed, false);
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(optional_bool(p, "individual_digits", where, false));
  if (type == "Punctuation")
    return std::make_unique<RegexSplitPreTokenizer>(R"(\p{P}|[!-/:-@\[-`{-~])",
                                                    behavior_of(optional_string(p, "behavior", where, "Isolated"), *this, where), false);
  if (type == "Metaspace")
    return std::make_unique<MetaspacePreTokenizer>(optional_string(p, "replacement", where, "\xE2\x96\x81"),
                                                   prepend_scheme(p, *this, where), optional_bool(p, "split", where, true));
  if (type == "Sequence") {
    const json& list = field(p, "pretokenizers", where);
    if (!list.is_array()) fail(where, "\"pretokenizers\" is not a list");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(pre_tokenizer(list[i], fmt::format("{}.pretokenizers[{}]", where, i)));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  fail(where, fmt::format("pre_tokenizer type \"{}\" is not supported", type));
}

std::unique_ptr<TokenDecoder> Reader::decoder(const json& d, const std::string& where) const {
  const std::string type = type_of(d, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(literal_pattern(d, where), string_field(d, "content", where));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(string_field(d, "content", where), optional_int(d, "start", where, 0),
                                          optional_int(d, "stop", where, 0));
  if (type == "WordPiece")
    return std::make_unique<WordPieceDecoder>(optional_string(d, "prefix", where, "##"), optional_bool(d, "cleanup", where, true));
  if (type == "Metaspace")
    return std::make_unique<MetaspaceDecoder>(optional_string(d, "replacement", where, "\xE2\x96\x81"),
                                              prepend_scheme(d, *this, where) != "never");
  if (type == "Sequence") {
    const json& list = field(d, "decoders", where);
    if (!list.is_array()) fail(where, "\"decoders\" is not a list");
    std::vector<std::unique_ptr<TokenDecoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(decoder(list[i], fmt::format("{}.decoders[{}]", where, i)));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  fail(where, fmt::format("decoder type \"{}\" is not supported", type));
}

std::unique_ptr<TokenModel> Reader::model(const json& m, const std::string& where) const {
  if (!m.is_object()) fail(where, "not a JSON object");
  // Older files have no "type": BPE has merges, WordPiece does not.
  std::string type = optional_string(m, "type", where);
  if (type.empty()) type = m.contains("merges") ? "BPE" : "WordPiece";
  const json& vocab_json = field(m, "vocab", where);
  if (!vocab_json.is_object()) fail(where, "\"vocab\" is not an object of token -> id");
  std::unordered_map<std::string, int> vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    if (!id.is_number_integer() || id.get<long long>() < 0 || id.get<long long>() >= kMaxTokenId)
      fail(where + ".vocab", fmt::format("the id of \"{}\" is not an integer from 0 to {}", token, kMaxTokenId - 1));
    vocab.emplace(token, id.get<int>());
  }
  if (type == "BPE") {
    if (auto it = m.find("dropout"); it != m.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0.0))
      fail(where, "BPE dropout (random merges) is not supported");
    BpeOptions options;
    options.unk_token = optional_string(m, "unk_token", where);
    options.fuse_unk = optional_bool(m, "fuse_unk", where, false);
    options.byte_fallback = optional_bool(m, "byte_fallback", where, false);
    options.ignore_merges = optional_bool(m, "ignore_merges", where, false);
    options.continuing_subword_prefix = optional_string(m, "continuing_subword_prefix", where);
    options.end_of_word_suffix = optional_string(m, "end_of_word_suffix", where);
    const json& merges_json = field(m, "merges", where);
    if (!merges_json.is_array()) fail(where, "\"merges\" is not a list");
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(merges_json.size());
    for (size_t i = 0; i < merges_json.size(); ++i) {
      const json& merge = merges_json[i];
      if (merge.is_string()) {
        // "left right": exactly one space.
        const std::string text = merge.get<std::string>();
        const size_t space = text.find(' ');
        if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
          fail(fmt::format("{}.merges[{}]", where, i), "not two tokens separated by one space");
        merges.emplace_back(text.substr(0, space), text.substr(space + 1));
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      } else {
        fail(fmt::format("{}.merges[{}]", where, i), "not a merge (\"left right\" or [left, right])");
      }
    }
    try {
      return std::make_unique<BpeModel>(std::move(vocab), merges, options);
    } catch (const std::invalid_argument& e) {
      fail(where, e.what());
    }
  }
  if (type == "WordPiece") {
    try {
      return std::make_unique<WordPieceModel>(std::move(vocab), optional_string(m, "unk_token", where, "[UNK]"),
                                              optional_string(m, "continuing_subword_prefix", where, "##"),
                                              optional_int(m, "max_input_chars_per_word", where, 100));
    } catch (const std::invalid_argument& e) {
      fail(where, e.what());
    }
  }
  fail(where, fmt::format("model type \"{}\" is not supported (BPE and WordPiece are)", type));
}

std::vector<AddedToken> Reader::added_tokens(const json& list) const {
  std::vector<AddedToken> out;
  if (list.is_null()) return out;
  if (!list.is_array()) fail("added_tokens", "not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = fmt::format("added_tokens[{}]", i);
    const json& t = list[i];
    AddedToken token;
    token.id = optional_int(t, "id", where, -1);
    if (token.id < 0 || token.id >= kMaxTokenId) fail(where, fmt::format("\"id\" is not an integer from 0 to {}", kMaxTokenId - 1));
    token.content = string_field(t, "content", where);
    token.special = optional_bool(t, "special", where, false);
    token.single_word = optional_bool(t, "single_word", where, false);
    token.lstrip = optional_bool(t, "lstrip", where, false);
    token.rstrip = optional_bool(t, "rstrip", where, false);
    token.normalized = optional_bool(t, "normalized", where, !token.special);
    out.push_back(token);
  }
  return out;
}

std::optional<SpecialTokenTemplate> Reader::post_processor(const json& p, const std::string& where,
                                                           const std::function<int(const std::string&)>& id_of) const {
  if (p.is_null()) return std::nullopt;
  const std::string type = type_of(p, where);
  auto token = [&](const char* key) {
    // ["</s>", 2]
    const json& pair = field(p, key, where);
    if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer())
      fail(where, fmt::format("\"{}\" is not [token, id]", key));
    return pair[1].get<int>();
  };
  using Item = SpecialTokenTemplate::Item;
  if (type == "BertProcessing") {
    const int cls = token("cls"), sep = token("sep");
    SpecialTokenTemplate t;
    t.single = {Item{{cls}, 0, 0}, Item{{}, 0, 0}, Item{{sep}, 0, 0}};
    t.pair = {Item{{cls}, 0, 0}, Item{{}, 0, 0}, Item{{sep}, 0, 0}, Item{{}, 1, 1}, Item{{sep}, 0, 1}};
    return t;
  }
  if (type == "RobertaProcessing") {
    // RoBERTa has one token type: all type ids 0.
    const int cls = token("cls"), sep = token("sep");
    SpecialTokenTemplate t;
    t.single = {Item{{cls}, 0, 0}, Item{{}, 0, 0}, Item{{sep}, 0, 0}};
    t.pair = {Item{{cls}, 0, 0}, Item{{}, 0, 0}, Item{{sep}, 0, 0}, Item{{sep}, 0, 0}, Item{{}, 1, 0}, Item{{sep}, 0, 0}};
    return t;
  }
  if (type == "ByteLevel") return std::nullopt;
  if (type == "TemplateProcessing") {
    // Special token name -> ids, from "special_tokens"; else the vocabulary.
    std::map<std::string, std::vector<int>> specials;
    if (auto it = p.find("special_tokens"); it != p.end() && it->is_object()) {
      for (const auto& [name, value] : it->items()) {
        const json& ids = field(value, "ids", where + ".special_tokens." + name);
        if (!ids.is_array()) fail(where + ".special_tokens." + name, "\"ids\" is not a list");
        for (const auto& id : ids) {
          if (!id.is_number_integer()) fail(where + ".special_tokens." + name, "an id is not an integer");
          specials[name].push_back(id.get<int>());
        }
      }
    }
    auto items = [&](const char* key) {
      const json& list = field(p, key, where);
      if (!list.is_array()) fail(where, fmt::format("\"{}\" is not a list", key));
      std::vector<Item> out;
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string at = fmt::format("{}.{}[{}]", where, key, i);
        const json& entry = list[i];
        if (entry.is_object() && entry.contains("SpecialToken")) {
          const json& s = entry["SpecialToken"];
          const std::string name = string_field(s, "id", at);
          std::vector<int> ids;
          if (auto it = specials.find(name); it != specials.end()) {
            ids = it->second;
          } else if (int id = id_of(name); id >= 0) {
            ids = {id};
          } else {
            fail(at, fmt::format("special token \"{}\" is not in the vocabulary", name));
          }
          out.push_back(Item{ids, 0, optional_int(s, "type_id", at, 0)});
        } else if (entry.is_object() && entry.contains("Sequence")) {
          const json& s = entry["Sequence"];
          const std::string name = string_field(s, "id", at);
          if (name != "A" && name != "B") fail(at, "a sequence is \"A\" or \"B\"");
          out.push_back(Item{{}, name == "A" ? 0 : 1, optional_int(s, "type_id", at, 0)});
        } else {
          fail(at, "neither {\"SpecialToken\": ...} nor {\"Sequence\": ...}");
        }
      }
      return out;
    };
    SpecialTokenTemplate t;
    t.single = items("single");
    t.pair = items("pair");
    return t;
  }
  if (type == "Sequence") {
    // The processors that add special tokens; ByteLevel ones only trim offsets.
    const json& list = field(p, "processors", where);
    if (!list.is_array()) fail(where, "\"processors\" is not a list");
    std::optional<SpecialTokenTemplate> out;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto t = post_processor(list[i], fmt::format("{}.processors[{}]", where, i), id_of)) out = t;
    return out;
  }
  fail(where, fmt::format("post_processor type \"{}\" is not supported", type));
}

// The first special token before the text and the first after it in a one-text template.
void roles_from_template(const SpecialTokenTemplate& t, const std::function<std::string(int)>& name_of,
                         PipelineTokenizer::Specials& specials) {
  bool after_text = false;
  for (const auto& item : t.single) {
    if (item.special_ids.empty()) {
      after_text = true;
    } else if (!after_text && !specials.adds_bos) {
      specials.adds_bos = true;
      specials.bos = name_of(item.special_ids.front());
    } else if (after_text && !specials.adds_eos) {
      specials.adds_eos = true;
      specials.eos = name_of(item.special_ids.front());
    }
  }
}

}  // namespace

std::shared_ptr<Tokenizer> load_hf_tokenizer_json(const fs::path& file, const TokenizerConfig* config) {
  Reader reader(file);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), "cannot open");
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    reader.fail("", std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) reader.fail("", "not a JSON object");

  PipelineTokenizer::Parts parts;
  parts.model = reader.model(reader.field(root, "model", ""), "model");
  if (auto it = root.find("normalizer"); it != root.end() && !it->is_null()) parts.normalizer = reader.normalizer(*it, "normalizer");
  if (auto it = root.find("pre_tokenizer"); it != root.end() && !it->is_null())
    parts.pre_tokenizer = reader.pre_tokenizer(*it, "pre_tokenizer");
  if (auto it = root.find("decoder"); it != root.end() && !it->is_null()) parts.decoder = reader.decoder(*it, "decoder");
  if (auto it = root.find("added_tokens"); it != root.end()) parts.added_tokens = reader.added_tokens(*it);

  const TokenModel& model = *parts.model;
  const std::vector<AddedToken>& added = parts.added_tokens;
  auto id_of = [&](const std::string& name) {
    for (const auto& token : added)
      if (token.content == name) return token.id;
    return model.token_id(name);
  };
  auto name_of = [&](int id) -> std::string {
    for (const auto& token : added)
      if (token.id == id) return token.content;
    const std::string* token = model.token_of(id);
    return token != nullptr ? *token : std::string();
  };
  PipelineTokenizer::Specials specials = usual_special_roles(added);
  if (auto it = root.find("post_processor"); it != root.end()) {
    specials.special_template = reader.post_processor(*it, "post_processor", id_of);
    if (specials.special_template) roles_from_template(*specials.special_template, name_of, specials);
  }
  return std::make_shared<PipelineTokenizer>(std::move(parts), std::vector<fs::path>{file}, "tokenizer.json", specials, config);
}

}  // namespace peftlab
