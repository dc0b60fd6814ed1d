// The DoRA paper's Llama-2-7B and Llama-3-8B commonsense specs and the LoRA paper's RoBERTa GLUE specs plan
// from config.json alone: `peftlab plan` on a folder that holds nothing but the published config. The expected counts are worked out here from the
// published shapes (not from peftlab's code): per adapted Linear of shape (out x in), LoRA trains r (in + out),
// DoRA adds a magnitude per output row, BoRA a magnitude per output row and one per input column.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/data_root.h"
#include "methods/plan.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

// Meta-Llama-3-8B's published config.json.
const char* kLlama3_8bConfig = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

struct DecoderShape {
  int64_t hidden, intermediate, layers, heads, kv_heads, vocab;

  int64_t kv_dim() const { return hidden / heads * kv_heads; }
  // Every weight of the untied model: embeddings and lm_head, four attention and three MLP projections and
  // two norms per layer, the final norm.
  int64_t backbone() const {
    int64_t attention = 2 * hidden * hidden + 2 * hidden * kv_dim();
    int64_t mlp = 3 * hidden * intermediate;
    return 2 * vocab * hidden + layers * (attention + mlp + 2 * hidden) + hidden;
  }
  // The (out, in) of the targets q, k, v, up, down in one layer.
  std::vector<std::pair<int64_t, int64_t>> targets() const {
    return {{hidden, hidden}, {kv_dim(), hidden}, {kv_dim(), hidden}, {intermediate, hidden}, {hidden, intermediate}};
  }
  int64_t trainable(const std::string& method, int64_t rank) const {
    int64_t per_layer = 0;
    for (auto [out, in] : targets()) {
      per_layer += rank * (in + out);
      if (method == "dora" || method == "bora") per_layer += out;
      if (method == "bora") per_layer += in;
    }
    return layers * per_layer;
  }
};

const DecoderShape kLlama2_7b{4096, 11008, 32, 32, 32, 32000};
const DecoderShape kLlama3_8b{4096, 14336, 32, 32, 8, 128256};

struct PaperSpec {
  std::string file;
  const DecoderShape* shape;
  int64_t rank;
  std::string alpha;
  bool llama3;
};

class PaperSpecs : public ::testing::TestWithParam<PaperSpec> {};

TEST_P(PaperSpecs, PlanFromConfigJsonAlone) {
  const auto& spec = GetParam();
  testing::TempDir dir;
  const fs::path model = dir / "model";
  fs::create_directories(model);
  if (spec.llama3) {
    testing::write_file(model / "config.json", kLlama3_8bConfig);
  } else {
    const fs::path published = data_path("configs/Llama-2-7b-hf/config.json");
    ASSERT_TRUE(fs::exists(published)) << published;
    fs::copy_file(published, model / "config.json");
  }
  const fs::path spec_path = fs::path(PEFTLAB_SOURCE_DIR) / "experiments" / "paper" / spec.file;
  // The specs ask for a GPU; this machine's LibTorch has none, which plan refuses (exit 2), so plan for the CPU.
  auto result = testing::run_cli(
      {"plan", spec_path.string(), "--set", "model.path=" + model.string(), "--set", "model.device=cpu"});
  ASSERT_EQ(result.status, 0) << result.output;

  // Three runs (LoRA, DoRA, BoRA on commonsense, one seed), each adapting q, k, v, up and down in 32 layers.
  EXPECT_NE(result.output.find("3 run(s)"), std::string::npos) << result.output;
  const int64_t backbone = spec.shape->backbone();
  for (const std::string method : {"lora", "dora", "bora"}) {
    const int64_t trainable = spec.shape->trainable(method, spec.rank);
    const std::string line = fmt::format("trainable parameters: {} of {}", with_thousands(trainable),
                                         with_thousands(backbone + trainable));
    EXPECT_NE(result.output.find(line), std::string::npos) << method << ": " << line << "\n" << result.output;
  }
  EXPECT_NE(result.output.find("adapted modules: 160"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(fmt::format("rank {}  alpha {}", spec.rank, spec.alpha)), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find(with_thousands(backbone) + " parameters"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(fmt::format("{} heads ({} kv", spec.shape->heads, spec.shape->kv_heads)), std::string::npos)
      << result.output;
}

INSTANTIATE_TEST_SUITE_P(
    DoraCommonsense, PaperSpecs,
    ::testing::Values(PaperSpec{"dora_llama2_7b_commonsense_r16.yaml", &kLlama2_7b, 16, "32", false},
                      PaperSpec{"dora_llama2_7b_commonsense_r32.yaml", &kLlama2_7b, 32, "64", false},
                      PaperSpec{"dora_llama3_8b_commonsense_r16.yaml", &kLlama3_8b, 16, "32", true},
                      PaperSpec{"dora_llama3_8b_commonsense_r32.yaml", &kLlama3_8b, 32, "64", true}),
    [](const ::testing::TestParamInfo<PaperSpec>& info) {
      return info.param.file.substr(5, info.param.file.size() - 5 - 5);  // "llama2_7b_commonsense_r16"
    });

// The counts worked out above against the published model sizes and the DoRA paper's parameter shares.
TEST(PaperSpecArithmetic, PublishedSizesAndShares) {
  EXPECT_EQ(kLlama2_7b.backbone(), 6'738'415'616);  // Llama-2-7b-hf
  EXPECT_EQ(kLlama3_8b.backbone(), 8'030'261'248);  // Meta-Llama-3-8B
  auto share = [](const DecoderShape& s, const std::string& method, int64_t rank) {
    double trainable = static_cast<double>(s.trainable(method, rank));
    return 100.0 * trainable / (static_cast<double>(s.backbone()) + trainable);
  };
  // The paper's Table 1: LLaMA2-7B LoRA (r 32) 0.83%, DoRA (r 16) 0.43%, DoRA (r 32) 0.84%; LLaMA3-8B LoRA (r 32)
  // 0.70%, DoRA (r 32) 0.71%.
  EXPECT_NEAR(share(kLlama2_7b, "lora", 32), 0.83, 0.005);
  EXPECT_NEAR(share(kLlama2_7b, "dora", 16), 0.43, 0.005);
  EXPECT_NEAR(share(kLlama2_7b, "dora", 32), 0.84, 0.005);
  EXPECT_NEAR(share(kLlama3_8b, "lora", 32), 0.70, 0.005);
  EXPECT_NEAR(share(kLlama3_8b, "dora", 32), 0.71, 0.005);
}

// ---- The LoRA paper's RoBERTa GLUE specs (r 8 on query and value) ----

// roberta-large's published config.json (roberta-base's is in the data root).
const char* kRobertaLargeConfig = R"({
  "architectures": ["RobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1,
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 4096,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514,
  "model_type": "roberta",
  "num_attention_heads": 16,
  "num_hidden_layers": 24,
  "pad_token_id": 1,
  "type_vocab_size": 1,
  "vocab_size": 50265
})";

struct EncoderShape {
  int64_t hidden, intermediate, layers, vocab, positions, token_types;
  // Embeddings (word, position, token type, LayerNorm), then per layer four biased H x H projections, the
  // biased feed-forward pair and two LayerNorms. No pooler: RoBERTa's classification head is the task's.
  int64_t backbone() const {
    const int64_t embeddings = (vocab + positions + token_types) * hidden + 2 * hidden;
    const int64_t layer = 4 * (hidden * hidden + hidden) + 2 * hidden * intermediate + intermediate + hidden + 4 * hidden;
    return embeddings + layers * layer;
  }
  // r (in + out) per adapted H x H projection, two per layer; DoRA adds a magnitude per output row, BoRA one per
  // input column too.
  int64_t trainable(const std::string& method, int64_t rank) const {
    int64_t per_projection = rank * 2 * hidden;
    if (method == "dora" || method == "bora") per_projection += hidden;
    if (method == "bora") per_projection += hidden;
    return layers * 2 * per_projection;
  }
};

const EncoderShape kRobertaBase{768, 3072, 12, 50265, 514, 1};
const EncoderShape kRobertaLarge{1024, 4096, 24, 50265, 514, 1};

TEST(RobertaGlueSpecArithmetic, PublishedSizes) {
  // Hugging Face's roberta-base and roberta-large hold 124,645,632 and 355,359,744 parameters with the pooler
  // (hidden x hidden + hidden), which RobertaForSequenceClassification does not use.
  EXPECT_EQ(kRobertaBase.backbone() + 768 * 768 + 768, 124'645'632);
  EXPECT_EQ(kRobertaLarge.backbone() + 1024 * 1024 + 1024, 355'359'744);
  EXPECT_EQ(kRobertaBase.trainable("lora", 8), 294'912);  // 12 * 2 * (768 * 8 + 8 * 768)
  EXPECT_EQ(kRobertaLarge.trainable("lora", 8), 786'432);
}

struct RobertaSpec {
  std::string file;
  const EncoderShape* shape;
  std::string alpha;
  bool large;
};

class RobertaGlueSpecs : public ::testing::TestWithParam<RobertaSpec> {};

TEST_P(RobertaGlueSpecs, PlanFromConfigJsonAlone) {
  const auto& spec = GetParam();
  testing::TempDir dir;
  const fs::path model = dir / "model";
  fs::create_directories(model);
  if (spec.large) {
    testing::write_file(model / "config.json", kRobertaLargeConfig);
  } else {
    const fs::path published = data_path("configs/roberta-base/config.json");
    ASSERT_TRUE(fs::exists(published)) << published;
    fs::copy_file(published, model / "config.json");
  }
  const fs::path spec_path = fs::path(PEFTLAB_SOURCE_DIR) / "experiments" / "paper" / spec.file;
  auto result = testing::run_cli({"plan", spec_path.string(), "--set", "model.path=" + model.string()});
  ASSERT_EQ(result.status, 0) << result.output;
  // Five GLUE tasks trainable from the data root, each with its own row of the paper's table, x three methods.
  EXPECT_NE(result.output.find("15 run(s)"), std::string::npos) << result.output;
  const int64_t backbone = spec.shape->backbone();
  for (const std::string method : {"lora", "dora", "bora"}) {
    const int64_t trainable = spec.shape->trainable(method, 8);
    const std::string line = fmt::format("trainable parameters: {} of {}", with_thousands(trainable),
                                         with_thousands(backbone + trainable));
    EXPECT_NE(result.output.find(line), std::string::npos) << method << ": " << line << "\n" << result.output;
  }
  EXPECT_NE(result.output.find(fmt::format("adapted modules: {}", 2 * spec.shape->layers)), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find(fmt::format("rank 8  alpha {}", spec.alpha)), std::string::npos) << result.output;
}

INSTANTIATE_TEST_SUITE_P(LoraGlue, RobertaGlueSpecs,
                         ::testing::Values(RobertaSpec{"lora_roberta_base_glue.yaml", &kRobertaBase, "8", false},
                                           RobertaSpec{"lora_roberta_large_glue.yaml", &kRobertaLarge, "16", true}),
                         [](const ::testing::TestParamInfo<RobertaSpec>& info) {
                           return info.param.large ? std::string("large") : std::string("base");
                         });

// The AdaLoRA-style DeBERTa-v3-base spec: LoRA r 8 on all six weight matrices is AdaLoRA's 1.33M row
// (12 layers x (4 x 8 x (768 + 768) + 2 x 8 x (768 + 3072)) = 1,327,104), from the published config.json
// of microsoft/deberta-v3-base (its values written here; the data root has no copy).
TEST(DebertaGlueSpec, PlanFromConfigJsonAlone) {
  testing::TempDir dir;
  const fs::path model = dir / "model";
  fs::create_directories(model);
  testing::write_file(model / "config.json", R"({"model_type": "deberta-v2", "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "max_position_embeddings": 512, "relative_attention": true, "position_buckets": 256,
    "norm_rel_ebd": "layer_norm", "share_att_key": true, "pos_att_type": "p2c|c2p", "layer_norm_eps": 1e-7,
    "max_relative_positions": -1, "position_biased_input": false, "num_attention_heads": 12,
    "num_hidden_layers": 12, "type_vocab_size": 0, "vocab_size": 128100})");
  const fs::path spec_path = fs::path(PEFTLAB_SOURCE_DIR) / "experiments" / "paper" / "lora_deberta_v3_base_glue.yaml";
  auto result = testing::run_cli({"plan", spec_path.string(), "--set", "model.path=" + model.string()});
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("15 run(s)"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("adapted modules: 72"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("trainable parameters: 1,327,104 of"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace peftlab
