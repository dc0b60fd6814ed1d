// A random-weight Qwen2-layout model (q/k/v biases, tied embeddings) with the real Qwen2.5 tokenizer files
// (vocab.json + merges.txt + tokenizer_config.json) fine-tuned end to end through the CLI: run (LoRA and DoRA
// on the biased q/v slots, SST-2), export in the PEFT layout, and eval --adapter giving the run's own numbers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/backbone.h"
#include "core/data_root.h"
#include "core/hf_checkpoint.h"
#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

fs::path write_random_qwen2(const fs::path& folder) {
  const nlohmann::json config{{"model_type", "qwen2"},      {"hidden_size", 32},
                              {"intermediate_size", 64},    {"num_hidden_layers", 2},
                              {"num_attention_heads", 4},   {"num_key_value_heads", 2},
                              {"vocab_size", 151936},       {"max_position_embeddings", 128},
                              {"rms_norm_eps", 1e-6},       {"rope_theta", 1000000.0},
                              {"tie_word_embeddings", true}, {"use_sliding_window", false}};
  torch::manual_seed(7);
  Backbone model = backbone_config_from_json(config, "test config")->build();
  write_hf_folder(*model, folder);
  const fs::path tokenizer = data_root() / "tokenizers" / "qwen2.5-0.5b";
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json"})
    fs::copy_file(tokenizer / name, folder / name);
  return folder;
}

TEST(FamilyEndToEnd, Qwen2WithRealTokenizerTrainsExportsAndEvaluates) {
  testing::TempDir dir;
  const fs::path model = write_random_qwen2(dir / "qwen2-tiny");
  ASSERT_TRUE(fs::exists(model / "config.json"));
  const fs::path spec = dir / "spec.yaml";
  std::ofstream(spec) << "name: qwen2-tiny\n"
                         "model: {path: " << model.string() << "}\n"
                         "methods: [{name: lora, rank: 4, alpha: 8}, {name: dora, rank: 4, alpha: 8}]\n"
                         "tasks: [{name: sst2, max_seq_len: 32, max_train_examples: 64}]\n"
                         "seeds: [1]\n"
                         "train: {lr: 0.001, batch_size: 4, max_steps: 2, warmup_steps: 0, eval_every: 2}\n"
                         "eval: {max_examples: 16, batch_size: 8}\n";
  const fs::path out = dir / "runs";
  auto ran = run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", out.string(), "--no-table"});
  ASSERT_EQ(ran.status, 0) << ran.output;

  for (const std::string label : {"lora-r4", "dora-r4"}) {
    SCOPED_TRACE(label);
    const fs::path run_dir = out / "sst2" / label / "seed1";
    RunFileReader reader((run_dir / "run.h5").string());
    EXPECT_EQ(reader.attribute_string("status"), "completed");
    const double accuracy = reader.final_metrics("dev").at("accuracy");

    const fs::path exported = dir / ("export-" + label);
    auto exp = run_cli({"-q", "export", run_dir.string(), "--out", exported.string()});
    ASSERT_EQ(exp.status, 0) << exp.output;
    std::ifstream config_file(exported / "adapter_config.json");
    const auto adapter_config = nlohmann::json::parse(config_file);
    EXPECT_EQ(adapter_config.at("use_dora").get<bool>(), label == "dora-r4");
    EXPECT_EQ(adapter_config.at("task_type"), "SEQ_CLS");

    auto eval = run_cli({"--threads", "1", "-q", "eval", "--adapter", exported.string(), "--model", model.string(),
                         "--task", "{name: sst2, max_seq_len: 32}", "--split", "dev", "--max-examples", "16"});
    ASSERT_EQ(eval.status, 0) << eval.output;
    const auto printed = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
    EXPECT_DOUBLE_EQ(printed.at("dev").at("accuracy").get<double>(), accuracy) << eval.output;
  }
}

}  // namespace
}  // namespace peftlab
