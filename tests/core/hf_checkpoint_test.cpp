// Hugging Face folders: conversion from llama2.c keeps the logits (an independent check of the rotary row
// permutation), and every kind of bad input is an InputError naming the file.
#include "core/hf_checkpoint.h"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/families/llama.h"
#include "core/generate.h"
#include "core/llama2c.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "tests/test_support.h"

namespace peftlab {

namespace fs = std::filesystem;

class ConvertedStories : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    Backbone model = load_llama2c(testing::stories260k_bin());
    write_hf_folder(*model, dir_->path() / "hf", testing::stories260k_tokenizer());
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path folder() { return dir_->path() / "hf"; }
  static testing::TempDir* dir_;
};
testing::TempDir* ConvertedStories::dir_ = nullptr;

TEST_F(ConvertedStories, FolderHoldsConfigWeightsAndTokenizer) {
  EXPECT_TRUE(fs::exists(folder() / "config.json"));
  EXPECT_TRUE(fs::exists(folder() / "model.safetensors"));
  EXPECT_TRUE(fs::exists(folder() / "tokenizer.model"));
  auto config = read_backbone_config(folder() / "config.json");
  const auto& c = dynamic_cast<const LlamaConfig&>(*config);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_FALSE(c.rope_interleaved);
  SafetensorsFile file(folder() / "model.safetensors");
  EXPECT_TRUE(file.contains("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(file.contains("model.embed_tokens.weight"));
}

TEST_F(ConvertedStories, LogitsEqualTheLlama2cFile) {
  Backbone original = load_llama2c(testing::stories260k_bin());
  Backbone converted = load_hf_model(folder());
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  auto tokens = torch::randint(0, 512, {2, 40}, torch::kLong);
  // In float32 the permuted head dimension changes only the summation order of q.k: rounding noise.
  double diff32 = (original->forward(tokens) - converted->forward(tokens)).abs().max().item<double>();
  EXPECT_LT(diff32, 1e-4);
  // In float64 (the same float32 weights, widened) that noise vanishes and the permutation must be exact.
  original->to(torch::kFloat64);
  converted->to(torch::kFloat64);
  double diff64 = (original->forward(tokens) - converted->forward(tokens)).abs().max().item<double>();
  EXPECT_LT(diff64, 1e-10);
  // The q/k rows really were permuted (otherwise the test above would not test the permutation).
  EXPECT_FALSE(torch::equal(original->slot("layers.0.self_attn.q_proj")->weight,
                            converted->slot("layers.0.self_attn.q_proj")->weight));
}

TEST_F(ConvertedStories, GreedyTextThroughTheCli) {
  auto result = testing::run_cli({"generate", "--model", folder().string(), "--max-new-tokens", "60"});
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                               "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high"),
            std::string::npos)
      << result.output;
}

TEST(HfConfig, WrongTypeNamesTheField) {
  testing::TempDir dir;
  testing::write_file(dir / "config.json", R"({"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": "5",
    "num_attention_heads": 8, "max_position_embeddings": 512})");
  try {
    read_backbone_config(dir / "config.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "config.json").string() + ": field 'num_hidden_layers' must be an integer, got \"5\"");
  }
}

// A shape that disagrees with config.json is refused from the safetensors header, before the model is built.
TEST(HfFolder, TensorShapeAgainstConfigIsCheckedFirst) {
  testing::TempDir dir;
  Backbone model = load_llama2c(testing::stories260k_bin());
  write_hf_folder(*model, dir / "hf");
  auto config = nlohmann::json::parse(testing::read_file(dir / "hf" / "config.json"));
  config["intermediate_size"] = 1 << 20;  // would need 5 x 3 x 64 x 2^20 floats if it were allocated
  testing::write_file(dir / "hf" / "config.json", config.dump());
  try {
    load_hf_model(dir / "hf");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "hf" / "model.safetensors").string() +
                                         ": tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64]; " +
                                         (dir / "hf" / "config.json").string() + " implies [1048576, 64]");
  }
}

// A model folder whose safetensors header points a tensor past the end of the file.
TEST(HfFolder, LyingSafetensorsHeaderIsInputError) {
  testing::TempDir dir;
  Backbone model = load_llama2c(testing::stories260k_bin());
  write_hf_folder(*model, dir / "hf");
  std::string bytes = testing::read_file(dir / "hf" / "model.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  header["model.norm.weight"]["data_offsets"] = {bytes.size() * 2, bytes.size() * 2 + 256};
  std::string text = header.dump();
  text.resize(header_len, ' ');
  ASSERT_EQ(text.size(), header_len);
  testing::write_file(dir / "hf" / "model.safetensors", bytes.substr(0, 8) + text + bytes.substr(8 + header_len));
  EXPECT_THROW(load_hf_model(dir / "hf"), InputError);
}

// ---- The CLI's bad-input contract: exit status 2 and one line `error: <file>: <what>`. ----

void expect_input_error(const std::vector<std::string>& args, const std::string& expected_line) {
  auto result = testing::run_cli(args);
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_EQ(result.output, expected_line + "\n");
}

TEST(CliBadInput, MissingModelFile) {
  expect_input_error({"generate", "--model", "/nonexistent/model.bin", "--tokenizer", testing::stories260k_tokenizer()},
                     "error: /nonexistent/model.bin: no such file or folder");
}

TEST(CliBadInput, TruncatedCheckpoint) {
  testing::TempDir dir;
  std::string bytes = testing::read_file(testing::stories260k_bin());
  testing::write_file(dir / "cut.bin", bytes.substr(0, 5000));
  expect_input_error({"generate", "--model", (dir / "cut.bin").string(), "--tokenizer", testing::stories260k_tokenizer()},
                     "error: " + (dir / "cut.bin").string() +
                         ": truncated: the header's shape needs 1056540 bytes, the file has 5000");
}

// Sizes beyond the sanity bounds are refused while config.json is read, before anything is allocated.
TEST(CliBadInput, ConfigBeyondSanityBounds) {
  testing::TempDir dir;
  fs::create_directories(dir / "m");
  const std::string file = (dir / "m" / "config.json").string();
  testing::write_file(file, R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1099511627776})");
  expect_input_error({"generate", "--model", (dir / "m").string(), "--tokenizer", testing::stories260k_tokenizer()},
                     "error: " + file + ": field 'num_hidden_layers' is 1099511627776, beyond the sanity bound 1024");
  expect_input_error({"plan", "--model", (dir / "m").string()},
                     "error: " + file + ": field 'num_hidden_layers' is 1099511627776, beyond the sanity bound 1024");
  testing::write_file(file, R"({"model_type": "qwen2", "hidden_size": 1099511627776})");
  expect_input_error({"plan", "--model", (dir / "m").string()},
                     "error: " + file + ": field 'hidden_size' is 1099511627776, beyond the sanity bound 16777216");
  testing::write_file(file, R"({"model_type": "mistral", "vocab_size": 4000000000, "hidden_size": 16777216})");
  expect_input_error({"plan", "--model", (dir / "m").string()},
                     "error: " + file + ": field 'vocab_size' is 4000000000, beyond the sanity bound 16777216");
  // Each field within its bound, the product beyond the parameter bound.
  testing::write_file(file, R"({"model_type": "llama", "hidden_size": 16777216, "intermediate_size": 16777216,
    "num_attention_heads": 1, "vocab_size": 16777216, "num_hidden_layers": 1024})");
  auto result = testing::run_cli({"plan", "--model", (dir / "m").string()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_EQ(result.output.rfind("error: " + file + ": the config implies ", 0), 0u) << result.output;
  testing::write_file(file, R"({"model_type": "gpt2", "hidden_size": 64})");
  result = testing::run_cli({"plan", "--model", (dir / "m").string()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_EQ(result.output.rfind("error: " + file + ": model_type: unknown model family 'gpt2'", 0), 0u) << result.output;
}

TEST(CliBadInput, TokenizerDoesNotMatchModel) {
  // A valid llama2.c file with a 100-piece vocabulary, against the 512-piece tokenizer.
  testing::TempDir dir;
  // Floats: embedding 100 x 16, one layer (2 norms of 16, q/k/v/o 16 x 16, gate/up/down 16 x 32), final norm,
  // rotary tables 8 x 8.
  const int64_t floats = 100 * 16 + (2 * 16 + 4 * 16 * 16 + 3 * 16 * 32) + 16 + 8 * 8;
  std::string bytes(28 + 4 * floats, '\0');
  int32_t header[7] = {16, 32, 1, 2, 2, 100, 8};
  std::memcpy(bytes.data(), header, 28);
  testing::write_file(dir / "small.bin", bytes);
  expect_input_error({"generate", "--model", (dir / "small.bin").string(), "--tokenizer", testing::stories260k_tokenizer()},
                     "error: " + testing::stories260k_tokenizer().string() +
                         ": tokenizer has 512 pieces but the model's vocabulary has only 100; they do not belong together");
}

TEST(CliBadInput, LyingSafetensorsThroughTheCli) {
  testing::TempDir dir;
  fs::create_directories(dir / "m");
  std::ofstream(dir / "m" / "config.json") << read_llama2c_config(testing::stories260k_bin())->to_hf_json().dump();
  // Header claims one F32 tensor of 4 bytes at offsets past the end of a 4-byte buffer.
  std::string header = R"({"model.norm.weight":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}})";
  uint64_t n = header.size();
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  testing::write_file(dir / "m" / "model.safetensors", bytes + header + "abcd");
  auto result = testing::run_cli({"generate", "--model", (dir / "m").string(), "--tokenizer", testing::stories260k_tokenizer()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_EQ(result.output.rfind("error: " + (dir / "m" / "model.safetensors").string() + ": ", 0), 0u) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1);
}

TEST(CliConvert, WritesAFolderThatGeneratesTheSameText) {
  testing::TempDir dir;
  auto convert = testing::run_cli({"convert", "--from", "llama2c", testing::stories260k_bin().string(), "--tokenizer",
                                   testing::stories260k_tokenizer().string(), "--out", (dir / "hf").string()});
  ASSERT_EQ(convert.status, 0) << convert.output;
  auto from_file = testing::run_cli({"generate", "--model", testing::stories260k_bin().string(), "--max-new-tokens", "80"});
  auto from_folder = testing::run_cli({"generate", "--model", (dir / "hf").string(), "--max-new-tokens", "80"});
  ASSERT_EQ(from_file.status, 0);
  EXPECT_EQ(from_file.output, from_folder.output);
}

}  // namespace peftlab
