// A random-weight RoBERTa-layout model fine-tuned end to end through the CLI on the real GLUE data: SST-2
// (classification) and STS-B (regression, one output, MSE), LoRA, DoRA and BoRA on PEFT's default targets
// (query, value) with the classification head trained in full; then the results table, the PEFT-layout
// export and eval --adapter giving the run's own numbers. The tokenizer is GPT-2's vocab.json + merges.txt
// from the data root laid out as RoBERTa's tokenizer.json (<s>, <pad>, </s>, <unk> first, then GPT-2's
// tokens; the pair template <s> A </s></s> B </s>).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "core/backbone.h"
#include "core/data_root.h"
#include "core/hf_checkpoint.h"
#include "core/recorder.h"
#include "core/tokenizer.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

// RoBERTa's tokenizer.json over GPT-2's byte-level BPE: the four specials at ids 0..3, GPT-2's tokens after
// them (RoBERTa's own vocabulary is GPT-2's renumbered the same way). Returns the vocabulary size.
int64_t write_roberta_tokenizer(const fs::path& folder) {
  const fs::path gpt2 = data_root() / "tokenizers" / "gpt2";
  std::ifstream vocab_file(gpt2 / "vocab.json");
  const auto gpt2_vocab = nlohmann::json::parse(vocab_file);
  nlohmann::json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  for (const auto& [piece, id] : gpt2_vocab.items()) vocab[piece] = id.get<int64_t>() + 4;
  nlohmann::json merges = nlohmann::json::array();
  std::ifstream merges_file(gpt2 / "merges.txt");
  for (std::string line; std::getline(merges_file, line);)
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  nlohmann::json added = nlohmann::json::array();
  for (const auto& [content, id] : {std::pair<const char*, int>{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}})
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  const nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", {{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 0}},
                          {"trim_offsets", true}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                 {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                 {"merges", merges}}}};
  std::ofstream(folder / "tokenizer.json") << tokenizer.dump();
  return int64_t(vocab.size());
}

fs::path write_random_roberta(const fs::path& folder) {
  fs::create_directories(folder);
  const int64_t vocab = write_roberta_tokenizer(folder);
  const nlohmann::json config{{"model_type", "roberta"},        {"hidden_size", 32},
                              {"intermediate_size", 64},        {"num_hidden_layers", 2},
                              {"num_attention_heads", 4},       {"vocab_size", vocab},
                              {"max_position_embeddings", 66},  {"type_vocab_size", 1},
                              {"layer_norm_eps", 1e-5},         {"pad_token_id", 1},
                              {"bos_token_id", 0},              {"eos_token_id", 2}};
  torch::manual_seed(7);
  Backbone model = backbone_config_from_json(config, "test config")->build();
  write_hf_folder(*model, folder);
  return folder;
}

TEST(EncoderEndToEnd, RobertaTokenizerBuildsThePairTemplate) {
  testing::TempDir dir;
  fs::create_directories(dir / "tok");
  write_roberta_tokenizer(dir / "tok");
  auto tokenizer = load_tokenizer(dir / "tok");
  const Encoding pair = tokenizer->encode_pair("Hello", "world");
  // GPT-2's "Hello" is 15496 and "world" 6894; here 4 more, between <s> ... </s></s> ... </s>.
  EXPECT_EQ(pair.ids, (std::vector<int>{0, 15500, 2, 2, 6898, 2}));
  EXPECT_EQ(pair.type_ids, std::vector<int>(6, 0));
  EXPECT_EQ(tokenizer->pad_id(), 1);
}

TEST(EncoderEndToEnd, RobertaOnSst2AndStsbTrainsTablesExportsAndEvaluates) {
  testing::TempDir dir;
  const fs::path model = write_random_roberta(dir / "roberta-tiny");
  const fs::path spec = dir / "spec.yaml";
  std::ofstream(spec) << "name: roberta-tiny\n"
                         "model: {path: " << model.string() << "}\n"
                         "methods: [{name: lora, rank: 4, alpha: 8}, {name: dora, rank: 4, alpha: 8},"
                         " {name: bora, rank: 4, alpha: 8}]\n"
                         "tasks: [{name: sst2, max_seq_len: 48, max_train_examples: 64},"
                         " {name: stsb, max_seq_len: 64, max_train_examples: 64}]\n"
                         "seeds: [1]\n"
                         "train: {lr: 0.001, batch_size: 4, max_steps: 3, warmup_steps: 0, eval_every: 3}\n"
                         "eval: {max_examples: 24, batch_size: 8}\n";
  const fs::path out = dir / "runs";
  auto ran = run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", out.string(), "--no-table"});
  ASSERT_EQ(ran.status, 0) << ran.output;

  auto table = run_cli({"-q", "table", out.string(), "--format", "csv"});
  ASSERT_EQ(table.status, 0) << table.output;
  for (const char* expected : {"sst2", "stsb", "lora-r4", "dora-r4", "bora-r4"})
    EXPECT_NE(table.output.find(expected), std::string::npos) << expected << "\n" << table.output;

  struct Case {
    std::string task, metric, yaml;
    double tolerance;
  };
  for (const Case& task : {Case{"sst2", "accuracy", "{name: sst2, max_seq_len: 48}", 1e-12},
                           Case{"stsb", "pearson", "{name: stsb, max_seq_len: 64}", 1e-3}}) {
    for (const std::string label : {"lora-r4", "dora-r4", "bora-r4"}) {
      SCOPED_TRACE(task.task + " " + label);
      const fs::path run_dir = out / task.task / label / "seed1";
      RunFileReader reader((run_dir / "run.h5").string());
      EXPECT_EQ(reader.attribute_string("status"), "completed");
      const double metric = reader.final_metrics("dev").at(task.metric);
      EXPECT_TRUE(std::isfinite(metric));

      const fs::path exported = dir / ("export-" + task.task + "-" + label);
      auto exp = run_cli({"-q", "export", run_dir.string(), "--out", exported.string()});
      ASSERT_EQ(exp.status, 0) << exp.output;
      std::ifstream config_file(exported / "adapter_config.json");
      const auto adapter_config = nlohmann::json::parse(config_file);
      EXPECT_EQ(adapter_config.at("use_dora").get<bool>(), label == "dora-r4");
      EXPECT_EQ(adapter_config.at("task_type"), "SEQ_CLS");
      EXPECT_EQ(adapter_config.at("target_modules"), nlohmann::json({"query", "value"}));
      EXPECT_EQ(adapter_config.at("modules_to_save"), nlohmann::json({"classifier.dense", "classifier.out_proj"}));

      auto eval = run_cli({"--threads", "1", "-q", "eval", "--adapter", exported.string(), "--model", model.string(),
                           "--task", task.yaml, "--split", "dev", "--max-examples", "24", "--batch-size", "8"});
      ASSERT_EQ(eval.status, 0) << eval.output;
      const auto printed = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
      // The exported adapter is evaluated merged into the weights: accuracy is the run's exactly; a correlation
      // over a barely trained head's nearly equal scores moves with float32 rounding of W + BA.
      EXPECT_NEAR(printed.at("dev").at(task.metric).get<double>(), metric, task.tolerance) << eval.output;
    }
  }
}

// An encoder takes classification and regression tasks only: a causal-LM task is refused before training.
TEST(EncoderEndToEnd, EncoderRefusesAGenerationTask) {
  testing::TempDir dir;
  const fs::path model = write_random_roberta(dir / "roberta-tiny");
  const fs::path spec = dir / "spec.yaml";
  std::ofstream(spec) << "name: roberta-lm\n"
                         "model: {path: " << model.string() << "}\n"
                         "methods: [{name: lora}]\n"
                         "tasks: [{name: lm, block_size: 32}]\n"
                         "train: {max_steps: 1}\n";
  auto ran = run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", (dir / "runs").string(), "--no-table"});
  EXPECT_NE(ran.status, 0);
  EXPECT_NE(ran.output.find("encoder"), std::string::npos) << ran.output;
}

}  // namespace
}  // namespace peftlab
