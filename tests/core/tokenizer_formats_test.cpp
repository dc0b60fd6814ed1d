// load_tokenizer: which file of a folder it reads, the special-token rules of each family, text pairs, and
// malformed files (InputError naming the file; exit status 2 through the CLI).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "core/data_root.h"
#include "core/errors.h"
#include "core/tokenizer.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

using testing::tokenizer_data;

// Expects InputError whose message starts with `file`.
template <typename F>
void expect_input_error(F&& load, const fs::path& file, const std::string& part_of_message = "") {
  try {
    load();
    ADD_FAILURE() << "expected InputError for " << file;
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(file.string() + ":", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find(part_of_message), std::string::npos) << e.what();
  }
}

TEST(TokenizerDiscovery, FolderFilesInOrder) {
  testing::TempDir dir;
  EXPECT_TRUE(find_tokenizer_file(dir.path()).empty());
  expect_input_error([&] { load_tokenizer(dir.path()); }, dir.path(), "no tokenizer in this folder");
  fs::create_symlink(tokenizer_data("bert-base-uncased/vocab.txt"), dir / "vocab.txt");
  EXPECT_EQ(find_tokenizer_file(dir.path()), dir / "vocab.txt");
  fs::create_symlink(tokenizer_data("gpt2/vocab.json"), dir / "vocab.json");
  EXPECT_EQ(find_tokenizer_file(dir.path()), dir / "vocab.txt");  // vocab.json needs merges.txt beside it
  fs::create_symlink(tokenizer_data("gpt2/merges.txt"), dir / "merges.txt");
  EXPECT_EQ(find_tokenizer_file(dir.path()), dir / "vocab.json");
  fs::create_symlink(tokenizer_data("llama2/tokenizer.model"), dir / "tokenizer.model");
  EXPECT_EQ(find_tokenizer_file(dir.path()), dir / "tokenizer.model");
  fs::create_symlink(tokenizer_data("llama2/tokenizer.json"), dir / "tokenizer.json");
  EXPECT_EQ(find_tokenizer_file(dir.path()), dir / "tokenizer.json");
  EXPECT_EQ(load_tokenizer(dir.path())->format(), "tokenizer.json");
}

TEST(TokenizerDiscovery, FormatsToldApartByContent) {
  EXPECT_EQ(load_tokenizer(tokenizer_data("llama2/tokenizer.model"))->format(), "sentencepiece");
  EXPECT_EQ(load_tokenizer(tokenizer_data("llama3/tokenizer.model"))->format(), "tiktoken");
  EXPECT_EQ(load_tokenizer(tokenizer_data("gpt2/vocab.json"))->format(), "vocab.json+merges.txt");
  EXPECT_EQ(load_tokenizer(tokenizer_data("gpt2/merges.txt"))->format(), "vocab.json+merges.txt");
  EXPECT_EQ(load_tokenizer(tokenizer_data("bert-base-uncased/vocab.txt"))->format(), "vocab.txt");
  EXPECT_EQ(load_tokenizer(tokenizer_data("qwen2.5-0.5b"))->format(), "vocab.json+merges.txt");
}

// Vocabulary sizes and special tokens as the models' published configurations give them.
TEST(TokenizerSpecials, RolesOfEachFamily) {
  struct Want {
    const char* file;
    int vocab, bos, eos, pad;
    bool adds_bos, adds_eos;
  };
  for (const Want& w : {Want{"gpt2/vocab.json", 50257, 50256, 50256, -1, false, false},
                        Want{"gpt2/tokenizer.json", 50257, 50256, 50256, -1, false, false},
                        Want{"gpt-neox-20b/tokenizer.json", 50277, 0, 0, 1, false, false},
                        Want{"qwen2.5-0.5b", 151665, -1, 151643, 151643, false, false},
                        Want{"llama2/tokenizer.model", 32000, 1, 2, -1, true, false},
                        Want{"llama2/tokenizer.json", 32000, 1, 2, -1, true, false},
                        Want{"llama3/tokenizer.model", 128256, 128000, 128001, -1, true, false},
                        Want{"bert-base-uncased/vocab.txt", 30522, 101, 102, 0, true, true},
                        Want{"bert-base-uncased/tokenizer.json", 30522, 101, 102, 0, true, true}}) {
    SCOPED_TRACE(w.file);
    auto tok = load_tokenizer(tokenizer_data(w.file));
    EXPECT_EQ(tok->vocab_size(), w.vocab);
    EXPECT_EQ(tok->bos_id(), w.bos);
    EXPECT_EQ(tok->eos_id(), w.eos);
    EXPECT_EQ(tok->pad_id(), w.pad);
    EXPECT_EQ(tok->pad_or_eos_id(), w.pad >= 0 ? w.pad : w.eos);
    EXPECT_EQ(tok->adds_bos(), w.adds_bos);
    EXPECT_EQ(tok->adds_eos(), w.adds_eos);
  }
}

TEST(TokenizerSpecials, EncodeFlagsAndPieces) {
  auto tok = load_tokenizer(tokenizer_data("llama2/tokenizer.json"));
  const std::vector<int> hello = {15043, 3186, 29991};  // "Hello world!" in Llama 2's published examples
  EXPECT_EQ(tok->encode("Hello world!"), hello);
  EXPECT_EQ(tok->encode("Hello world!", true, true), (std::vector<int>{1, 15043, 3186, 29991, 2}));
  EXPECT_EQ(tok->piece(15043), "\xE2\x96\x81Hello");
  EXPECT_EQ(tok->token_id("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(tok->token_id("no such piece"), -1);
  EXPECT_EQ(tok->decode({1, 15043, 3186, 29991, 2}), "Hello world!");
}

TEST(TokenizerSpecials, BertPairsHaveClsSepAndTypeIds) {
  for (const char* file : {"bert-base-uncased/vocab.txt", "bert-base-uncased/tokenizer.json"}) {
    SCOPED_TRACE(file);
    auto tok = load_tokenizer(tokenizer_data(file));
    const Encoding single = tok->encode_with_specials("Hello world");
    EXPECT_EQ(single.ids, (std::vector<int>{101, 7592, 2088, 102}));
    EXPECT_EQ(single.type_ids, (std::vector<int>{0, 0, 0, 0}));
    const Encoding pair = tok->encode_pair("Hello", "world!");
    EXPECT_EQ(pair.ids, (std::vector<int>{101, 7592, 102, 2088, 999, 102}));
    EXPECT_EQ(pair.type_ids, (std::vector<int>{0, 0, 0, 1, 1, 1}));
  }
}

TEST(TokenizerSpecials, LlamaPairsFromItsTemplate) {
  auto tok = load_tokenizer(tokenizer_data("llama2/tokenizer.json"));
  const Encoding pair = tok->encode_pair("Hello", "world!");
  // <s> A <s> B, the second part of type 1 (Llama 2's TemplateProcessing).
  EXPECT_EQ(pair.ids, (std::vector<int>{1, 15043, 1, 3186, 29991}));
  EXPECT_EQ(pair.type_ids, (std::vector<int>{0, 0, 1, 1, 1}));
  EXPECT_EQ(tok->encode_with_specials("Hello").ids, (std::vector<int>{1, 15043}));
}

// RoBERTa's post-processor: <s> A </s></s> B </s>, all of token type 0.
TEST(TokenizerSpecials, RobertaProcessingPairs) {
  testing::TempDir dir;
  std::ofstream(dir / "tokenizer.json") << R"({"added_tokens":[{"id":0,"content":"<s>","special":true},
    {"id":2,"content":"</s>","special":true}],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},
    "post_processor":{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0],"trim_offsets":true,"add_prefix_space":false},
    "decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"<s>":0,"</s>":2,"a":3,"b":4,"ab":5},"merges":["a b"]}})";
  auto tok = load_tokenizer(dir / "tokenizer.json");
  EXPECT_EQ(tok->encode("abba"), (std::vector<int>{5, 4, 3}));
  const Encoding pair = tok->encode_pair("ab", "a");
  EXPECT_EQ(pair.ids, (std::vector<int>{0, 5, 2, 2, 3, 2}));
  EXPECT_EQ(pair.type_ids, (std::vector<int>(6, 0)));
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->adds_bos());
  EXPECT_TRUE(tok->adds_eos());
}

TEST(TokenizerSpecials, ConfigFlagsOverrideTheTemplate) {
  testing::TempDir dir;
  fs::create_symlink(tokenizer_data("llama2/tokenizer.json"), dir / "tokenizer.json");
  std::ofstream(dir / "tokenizer_config.json") << R"({"add_bos_token": false, "add_eos_token": true,
    "bos_token": {"content": "<s>"}, "eos_token": "</s>", "pad_token": "<unk>"})";
  auto tok = load_tokenizer(dir.path());
  EXPECT_FALSE(tok->adds_bos());
  EXPECT_TRUE(tok->adds_eos());
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->encode_with_specials("Hello").ids, (std::vector<int>{15043, 2}));
}

TEST(TokenizerSpecials, InvalidUtf8ReadsAsReplacementCharacter) {
  auto tok = load_tokenizer(tokenizer_data("gpt2/vocab.json"));
  EXPECT_EQ(tok->encode("a\xFF" "b"), tok->encode("a\xEF\xBF\xBD" "b"));
}

// Qwen2.5's 151k-entry vocabulary and 151k merges load in well under the time a run notices.
TEST(TokenizerLoading, LargeVocabularyLoadsQuickly) {
  const auto start = std::chrono::steady_clock::now();
  auto tok = load_tokenizer(tokenizer_data("qwen2.5-0.5b"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ timing   ] qwen2.5 vocab.json + merges.txt loaded in " << seconds << " s\n";
  EXPECT_LT(seconds, 10.0);  // generous: the machine may be busy; about 0.5 s when idle
  EXPECT_EQ(tok->vocab_size(), 151665);
}

class TokenizerMalformed : public ::testing::Test {
 protected:
  fs::path write(const std::string& name, const std::string& bytes) {
    testing::write_file(dir / name, bytes);
    return dir / name;
  }
  testing::TempDir dir;
};

TEST_F(TokenizerMalformed, EachIsAnInputErrorNamingTheFile) {
  fs::path f = write("tokenizer.json", "{\"model\": ");
  expect_input_error([&] { load_tokenizer(f); }, f, "not valid JSON");
  f = write("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": {}}})");
  expect_input_error([&] { load_tokenizer(f); }, f, "model type \"Unigram\" is not supported");
  f = write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})");
  expect_input_error([&] { load_tokenizer(f); }, f, "merge 1");
  f = write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}})");
  expect_input_error([&] { load_tokenizer(f); }, f, "pre_tokenizer");
  f = write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "normalizer": {"type": "Precompiled"}})");
  expect_input_error([&] { load_tokenizer(f); }, f, "normalizer type \"Precompiled\" is not supported");
  f = write("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "[UNK]"}})");
  expect_input_error([&] { load_tokenizer(f); }, f, "[UNK]");
  f = write("tok.model", "SGVsbG8= 0\nnot base64! 1\n");
  expect_input_error([&] { load_tokenizer(f); }, f.string() + ":2");
  f = write("vocab.json", R"({"a": 0})");
  expect_input_error([&] { load_tokenizer(f); }, dir / "merges.txt", "no such file");
  write("merges.txt", "#version: 0.2\na b c\n");
  expect_input_error([&] { load_tokenizer(dir / "vocab.json"); }, (dir / "merges.txt").string() + ":2");
  f = write("vocab.txt", "");
  expect_input_error([&] { load_tokenizer(f); }, f, "no tokens");
  f = write("bad.model", "this is not a protobuf");
  expect_input_error([&] { load_tokenizer(f); }, f, "not a SentencePiece model");
  fs::create_directories(dir / "cfg");
  fs::create_symlink(tokenizer_data("gpt2/tokenizer.json"), dir / "cfg" / "tokenizer.json");
  testing::write_file(dir / "cfg" / "tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  expect_input_error([&] { load_tokenizer(dir / "cfg"); }, dir / "cfg" / "tokenizer_config.json", "<|nope|>");
}

TEST_F(TokenizerMalformed, CliExitsWithStatusTwoAndOneLine) {
  const fs::path bad = write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": "a b"}})");
  auto result = testing::run_cli({"generate", "--model", testing::stories260k_bin().string(), "--tokenizer", bad.string()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_EQ(result.output, "error: " + bad.string() + ": model: \"merges\" is not a list\n");
}

}  // namespace
}  // namespace peftlab
