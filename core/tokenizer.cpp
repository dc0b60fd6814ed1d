#include "core/tokenizer.h"

#include <fstream>

#include "core/bert_vocab.h"
#include "core/errors.h"
#include "core/gpt2_vocab_merges.h"
#include "core/hf_tokenizer_json.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/tiktoken_file.h"
#include "core/tokenizer_config.h"
#include "core/unicode_text.h"

namespace peftlab {

namespace fs = std::filesystem;

std::vector<int> Tokenizer::encode(const std::string& text, bool add_bos, bool add_eos) const {
  std::vector<int> ids = encode_text(is_valid_utf8(text) ? text : to_valid_utf8(text));
  if (add_bos && bos_id_ >= 0) ids.insert(ids.begin(), bos_id_);
  if (add_eos && eos_id_ >= 0) ids.push_back(eos_id_);
  return ids;
}

namespace {

Encoding apply_template(const std::vector<SpecialTokenTemplate::Item>& items, const std::vector<int>* texts[2]) {
  Encoding out;
  for (const auto& item : items) {
    if (!item.special_ids.empty()) {
      out.ids.insert(out.ids.end(), item.special_ids.begin(), item.special_ids.end());
      out.type_ids.insert(out.type_ids.end(), item.special_ids.size(), item.type_id);
    } else {
      const std::vector<int>& ids = *texts[item.sequence];
      out.ids.insert(out.ids.end(), ids.begin(), ids.end());
      out.type_ids.insert(out.type_ids.end(), ids.size(), item.type_id);
    }
  }
  return out;
}

}  // namespace

Encoding Tokenizer::encode_with_specials(const std::string& text) const {
  std::vector<int> ids = encode(text);
  const std::vector<int>* texts[2] = {&ids, &ids};
  return apply_template(template_.single, texts);
}

Encoding Tokenizer::encode_pair(const std::string& first, const std::string& second) const {
  std::vector<int> a = encode(first), b = encode(second);
  const std::vector<int>* texts[2] = {&a, &b};
  return apply_template(template_.pair, texts);
}

void Tokenizer::set_template_from_bos_eos() {
  template_ = SpecialTokenTemplate{};
  for (int sequence = 0; sequence < 2; ++sequence) {
    std::vector<SpecialTokenTemplate::Item> part;
    if (adds_bos_ && bos_id_ >= 0) part.push_back({{bos_id_}, 0, sequence});
    part.push_back({{}, sequence, sequence});
    if (adds_eos_ && eos_id_ >= 0) part.push_back({{eos_id_}, 0, sequence});
    if (sequence == 0) template_.single = part;
    template_.pair.insert(template_.pair.end(), part.begin(), part.end());
  }
}

fs::path find_tokenizer_file(const fs::path& folder) {
  for (const char* name : {"tokenizer.json", "tokenizer.model"})
    if (fs::is_regular_file(folder / name)) return folder / name;
  if (fs::is_regular_file(folder / "vocab.json") && fs::is_regular_file(folder / "merges.txt"))
    return folder / "vocab.json";
  if (fs::is_regular_file(folder / "vocab.txt")) return folder / "vocab.txt";
  return {};
}

namespace {

// The first bytes of a file, to tell formats apart by content.
std::string file_head(const fs::path& file, size_t n) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), "cannot open");
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

}  // namespace

std::shared_ptr<Tokenizer> load_tokenizer(const fs::path& file_or_folder) {
  if (!fs::exists(file_or_folder)) throw InputError(file_or_folder.string(), "no such file or folder");
  fs::path file = file_or_folder;
  if (fs::is_directory(file_or_folder)) {
    file = find_tokenizer_file(file_or_folder);
    if (file.empty())
      throw InputError(file_or_folder.string(),
                       "no tokenizer in this folder (looked for tokenizer.json, tokenizer.model, "
                       "vocab.json with merges.txt, vocab.txt)");
  }
  std::optional<TokenizerConfig> config;
  const fs::path config_file = file.parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(config_file)) config = read_tokenizer_config(config_file);
  const TokenizerConfig* cfg = config ? &*config : nullptr;

  const std::string name = file.filename().string();
  const std::string head = file_head(file, 4096);
  const size_t first = head.find_first_not_of(" \t\r\n");
  const bool json_object = first != std::string::npos && head[first] == '{';
  if (name == "merges.txt") return load_vocab_merges(file.parent_path() / "vocab.json", file, cfg);
  if (json_object) {
    if (name == "vocab.json") return load_vocab_merges(file, file.parent_path() / "merges.txt", cfg);
    return load_hf_tokenizer_json(file, cfg);
  }
  if (file.extension() == ".json") throw InputError(file.string(), "not a tokenizer file: expected a JSON object");
  if (file.extension() == ".txt") return load_bert_vocab(file, cfg);
  if (looks_like_tiktoken(head)) return load_tiktoken(file, cfg);
  return std::make_shared<SentencePieceTokenizer>(file, cfg);
}

}  // namespace peftlab
