// Every tokenizer file in the data root against an oracle written in Python from the format's reference
// algorithm (tests/reference/, docs/tokenizers.md): the same ids for every sample text, and the text back from
// the ids where the format keeps it. A missing python3, regex module or data file fails the test.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/data_root.h"
#include "core/tokenizer.h"
#include "core/unicode_text.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path reference_dir() { return fs::path(PEFTLAB_SOURCE_DIR) / "tests" / "reference"; }
fs::path samples_file() { return reference_dir() / "tokenizer_samples.json"; }
using testing::tokenizer_data;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs an oracle script with python3; its JSON output {sample name: [ids]}. Fails the test (and returns
// null) when python3, the regex module or a file is missing, or the script fails.
json run_oracle(const std::string& script, const std::vector<std::string>& args) {
  testing::TempDir dir;
  std::string command = "python3 " + quote((reference_dir() / script).string()) + " " + quote(samples_file().string());
  for (const auto& a : args) command += " " + quote(a);
  command += " 2>" + quote((dir / "stderr").string());
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return nullptr;
  }
  std::string out;
  std::array<char, 65536> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << "oracle failed: " << command << "\n" << testing::read_file(dir / "stderr");
    return nullptr;
  }
  try {
    return json::parse(out);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "oracle printed no JSON: " << e.what() << "\n" << out;
    return nullptr;
  }
}

json samples() {
  std::ifstream in(samples_file());
  return json::parse(in);
}

std::string ids_text(const std::vector<int>& ids) { return json(ids).dump(); }

struct OracleCase {
  std::string name;
  std::string tokenizer;  // under data/tokenizers/, a file or a folder
  std::string script;
  std::vector<std::string> args;  // paths under data/tokenizers/ start with "@"
  bool lossless = true;           // decode(encode(text)) gives the text back (NFC-normalized when `nfc`)
  bool nfc = false;
  bool specials_as_text = false;  // special-token strings in text are read as text (SentencePiece)
};

std::ostream& operator<<(std::ostream& os, const OracleCase& c) { return os << c.name; }

std::vector<std::string> resolved(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) out.push_back(a.rfind('@', 0) == 0 ? tokenizer_data(a.substr(1)).string() : a);
  return out;
}

// Compares ids sample by sample; prints the agreement counts.
void expect_same_ids(const std::string& label, const Tokenizer& tok, const json& expected, bool skip_special_sample) {
  size_t samples_same = 0, samples_total = 0, ids_same = 0, ids_total = 0;
  for (const auto& s : samples()) {
    const std::string name = s["name"];
    if (skip_special_sample && name == "special_tokens") continue;
    ASSERT_TRUE(expected.contains(name)) << "oracle has no ids for " << name;
    const std::vector<int> want = expected[name].get<std::vector<int>>();
    const std::vector<int> got = tok.encode(s["text"].get<std::string>());
    ++samples_total;
    ids_total += want.size();
    for (size_t i = 0; i < std::min(want.size(), got.size()) && want[i] == got[i]; ++i) ++ids_same;
    if (got == want) ++samples_same;
    EXPECT_EQ(ids_text(got), ids_text(want)) << label << ", sample " << name;
  }
  std::cout << "[ oracle   ] " << label << ": " << samples_same << "/" << samples_total << " samples, " << ids_same << "/"
            << ids_total << " ids identical\n";
}

class TokenizerOracle : public ::testing::TestWithParam<OracleCase> {};

TEST_P(TokenizerOracle, SameIdsAsTheReferenceAlgorithm) {
  const OracleCase& c = GetParam();
  const json expected = run_oracle(c.script, resolved(c.args));
  ASSERT_FALSE(expected.is_null());
  auto tok = load_tokenizer(tokenizer_data(c.tokenizer));
  expect_same_ids(c.name, *tok, expected, c.specials_as_text);
}

TEST_P(TokenizerOracle, DecodeGivesTheTextBack) {
  const OracleCase& c = GetParam();
  if (!c.lossless) {
    // Lower-casing and accent stripping lose text: the decoded words are the normalized ones.
    auto tok = load_tokenizer(tokenizer_data(c.tokenizer));
    EXPECT_EQ(tok->decode(tok->encode("Héllo, World! It's CJK: 日本.")), "hello, world! it ' s cjk : 日 本.");
    return;
  }
  auto tok = load_tokenizer(tokenizer_data(c.tokenizer));
  for (const auto& s : samples()) {
    if (s["name"] == "special_tokens") continue;  // special tokens decode to nothing
    const std::string text = s["text"];
    const std::string want = c.nfc ? normalize_unicode(text, NormalForm::NFC) : text;
    EXPECT_EQ(json(tok->decode(tok->encode(text))).dump(), json(want).dump()) << c.name << ", sample " << s["name"];
  }
}

const char* kLlama3Config = "llama3/tokenizer_config.Meta-Llama-3-8B-Instruct.json";

INSTANTIATE_TEST_SUITE_P(
    DataFiles, TokenizerOracle,
    ::testing::Values(
        OracleCase{"gpt2_vocab_merges", "gpt2/vocab.json", "bytelevel_bpe_oracle.py",
                   {"--vocab-merges", "@gpt2/vocab.json", "@gpt2/merges.txt"}},
        OracleCase{"gpt2_tokenizer_json", "gpt2/tokenizer.json", "bytelevel_bpe_oracle.py",
                   {"--tokenizer-json", "@gpt2/tokenizer.json"}},
        OracleCase{"gpt_neox_20b", "gpt-neox-20b/tokenizer.json", "bytelevel_bpe_oracle.py",
                   {"--tokenizer-json", "@gpt-neox-20b/tokenizer.json"}, true, true},
        OracleCase{"qwen2_5", "qwen2.5-0.5b", "bytelevel_bpe_oracle.py",
                   {"--vocab-merges", "@qwen2.5-0.5b/vocab.json", "@qwen2.5-0.5b/merges.txt", "--config",
                    "@qwen2.5-0.5b/tokenizer_config.json"},
                   true, true},
        OracleCase{"llama2_tokenizer_json", "llama2/tokenizer.json", "sentencepiece_bpe_oracle.py",
                   {"@llama2/tokenizer.json"}},
        OracleCase{"llama2_sentencepiece_model", "llama2/tokenizer.model", "sentencepiece_bpe_oracle.py",
                   {"@llama2/tokenizer.json"}, true, false, true},
        OracleCase{"llama3_tiktoken", "llama3/tokenizer.model", "tiktoken_bpe_oracle.py", {"@llama3/tokenizer.model"}},
        OracleCase{"bert_vocab_txt", "bert-base-uncased/vocab.txt", "wordpiece_oracle.py",
                   {"--vocab-txt", "@bert-base-uncased/vocab.txt"}, false},
        OracleCase{"bert_tokenizer_json", "bert-base-uncased/tokenizer.json", "wordpiece_oracle.py",
                   {"--tokenizer-json", "@bert-base-uncased/tokenizer.json"}, false}),
    [](const ::testing::TestParamInfo<OracleCase>& info) { return info.param.name; });

// A folder like a Hugging Face model's: the given files linked in under the given names.
struct LinkedFolder {
  testing::TempDir dir;
  LinkedFolder(std::initializer_list<std::pair<const char*, std::string>> files) {
    for (const auto& [name, relative] : files) fs::create_symlink(tokenizer_data(relative), dir / name);
  }
};

TEST(TokenizerOracleFolders, Llama3TiktokenWithItsTokenizerConfig) {
  LinkedFolder folder({{"tokenizer.model", "llama3/tokenizer.model"}, {"tokenizer_config.json", kLlama3Config}});
  const json expected = run_oracle("tiktoken_bpe_oracle.py", {tokenizer_data("llama3/tokenizer.model").string(), "--config",
                                                              tokenizer_data(kLlama3Config).string()});
  ASSERT_FALSE(expected.is_null());
  auto tok = load_tokenizer(folder.dir.path());
  expect_same_ids("llama3_tiktoken_with_config", *tok, expected, false);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eos_id(), 128009);  // the instruct config's <|eot_id|>
}

// Qwen2's tokenizer.json form (NFC, Split with Qwen2's regex then ByteLevel without its own regex, a Sequence),
// written from the vocab.json + merges.txt pair: the same ids as the oracle gives for the pair.
TEST(TokenizerOracleFolders, Qwen2TokenizerJsonWithSplitPreTokenizer) {
  std::ifstream vocab_in(tokenizer_data("qwen2.5-0.5b/vocab.json")), config_in(tokenizer_data("qwen2.5-0.5b/tokenizer_config.json"));
  json vocab = json::parse(vocab_in), config = json::parse(config_in);
  json merges = json::array();
  std::ifstream merges_in(tokenizer_data("qwen2.5-0.5b/merges.txt"));
  for (std::string line; std::getline(merges_in, line);)
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  json added = json::array();
  for (const auto& [id, t] : config["added_tokens_decoder"].items())
    added.push_back({{"id", std::stoi(id)}, {"content", t["content"]}, {"special", t["special"]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false}});
  const std::string qwen2_regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  json tj = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"}, {"pattern", {{"Regex", qwen2_regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                 {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                 {"vocab", vocab}, {"merges", merges}}}};
  testing::TempDir dir;
  std::ofstream(dir / "tokenizer.json") << tj.dump();
  const json expected = run_oracle("bytelevel_bpe_oracle.py",
                                   {"--vocab-merges", tokenizer_data("qwen2.5-0.5b/vocab.json").string(),
                                    tokenizer_data("qwen2.5-0.5b/merges.txt").string(), "--config",
                                    tokenizer_data("qwen2.5-0.5b/tokenizer_config.json").string()});
  ASSERT_FALSE(expected.is_null());
  expect_same_ids("qwen2_5_as_tokenizer_json", *load_tokenizer(dir / "tokenizer.json"), expected, false);
}

// The SentencePiece library itself (through the shim) and the tokenizer.json reading of Llama 2 agree.
TEST(TokenizerOracleFolders, Llama2SentencePieceModelAndTokenizerJsonAgree) {
  auto model = load_tokenizer(tokenizer_data("llama2/tokenizer.model"));
  auto tj = load_tokenizer(tokenizer_data("llama2/tokenizer.json"));
  EXPECT_EQ(model->format(), "sentencepiece");
  EXPECT_EQ(tj->format(), "tokenizer.json");
  for (const auto& s : samples()) {
    if (s["name"] == "special_tokens") continue;  // SentencePiece reads "<s>" in text as text
    const std::string text = s["text"];
    EXPECT_EQ(ids_text(model->encode(text)), ids_text(tj->encode(text))) << s["name"];
  }
  // Where they differ by design: "<s>" in text is the BOS token for tokenizer.json, three pieces for SentencePiece.
  EXPECT_EQ(tj->encode("<s>"), std::vector<int>{1});
  EXPECT_GT(model->encode("<s>").size(), 1u);
}

// Each file under data/tokenizers/ is read by one of the cases above.
TEST(TokenizerOracleFolders, EveryDataFileIsCovered) {
  const std::set<std::string> covered = {
      "gpt2/vocab.json",          "gpt2/merges.txt",           "gpt2/tokenizer.json",
      "gpt-neox-20b/tokenizer.json", "qwen2.5-0.5b/vocab.json", "qwen2.5-0.5b/merges.txt",
      "qwen2.5-0.5b/tokenizer_config.json", "llama2/tokenizer.model", "llama2/tokenizer.json",
      "llama3/tokenizer.model",   kLlama3Config,               "bert-base-uncased/vocab.txt",
      "bert-base-uncased/tokenizer.json"};
  const fs::path root = data_path("tokenizers");
  ASSERT_TRUE(fs::is_directory(root)) << root;
  size_t seen = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string relative = fs::relative(entry.path(), root).generic_string();
    EXPECT_TRUE(covered.count(relative)) << relative << " has no oracle case";
    ++seen;
  }
  EXPECT_EQ(seen, covered.size()) << "a covered file is missing from " << root;
}

}  // namespace
}  // namespace peftlab
