// The model families behind core/backbone.h against independent references: published parameter counts of
// real configs, the DoRA paper's trainable shares, rope scaling from a float64 loop written here, the sliding
// window mask written out position by position, biases, tied embeddings, key maps and round trips.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "core/backbone.h"
#include "core/data_root.h"
#include "core/decoder.h"
#include "core/errors.h"
#include "core/hf_checkpoint.h"
#include "core/model_io.h"
#include "core/sentencepiece_tokenizer.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "methods/plan.h"
#include "methods/registry.h"
#include "core/safetensors.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path shared_config(const std::string& name) { return data_path("configs/" + name); }

BackboneConfigPtr small(json extra) {
  json config{{"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
              {"num_key_value_heads", 2}, {"vocab_size", 97}, {"max_position_embeddings", 64}};
  config.update(extra);
  return backbone_config_from_json(config, "test config");
}

Backbone small_model(json extra, uint64_t seed = 0) {
  torch::manual_seed(seed);
  return small(std::move(extra))->build();
}

TEST(BackboneFamilies, RealConfigsGiveThePublishedParameterCounts) {
  // Counts as the models' num_parameters() reports them (model cards / PEFT's print_trainable_parameters).
  const std::vector<std::tuple<std::string, std::string, int64_t>> cases = {
      {"Llama-2-7b-hf", "llama", 6738415616},
      {"TinyLlama-1.1B-Chat-v1.0", "llama", 1100048384},
      {"SmolLM2-135M", "llama", 134515008},
      {"Qwen2.5-0.5B", "qwen2", 494032768},
  };
  for (const auto& [name, family, count] : cases) {
    auto config = read_model_config(shared_config(name));
    EXPECT_EQ(config->model_type(), family) << name;
    EXPECT_EQ(config->parameter_count(), count) << name;
  }
}

TEST(BackboneFamilies, Qwen2HasQkvBiasesNotOnOutputAndTiesEmbeddings) {
  auto config = read_model_config(shared_config("Qwen2.5-0.5B"));
  for (const auto& s : config->slot_shapes()) {
    const bool qkv = s.module == "q_proj" || s.module == "k_proj" || s.module == "v_proj";
    EXPECT_EQ(s.has_bias, qkv) << s.name;
  }
  std::set<std::string> names;
  for (const auto& p : config->parameter_shapes()) names.insert(config->hf_key(p.name));
  EXPECT_TRUE(names.count("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE(names.count("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_FALSE(names.count("lm_head.weight"));  // tie_word_embeddings: true
  EXPECT_EQ(config->default_target_modules(), (std::vector<std::string>{"q_proj", "v_proj"}));
}

TEST(BackboneFamilies, DefaultsComeFromTheFamily) {
  // transformers' configuration defaults for what a config.json leaves out.
  auto llama = backbone_config_from_json(json{{"model_type", "llama"}}, "llama.json");
  EXPECT_EQ(llama->vocab_size, 32000);
  EXPECT_EQ(llama->max_position_embeddings, 2048);
  auto qwen = backbone_config_from_json(json{{"model_type", "qwen2"}}, "qwen.json");
  EXPECT_EQ(qwen->vocab_size, 151936);
  EXPECT_EQ(qwen->max_position_embeddings, 32768);
  auto mistral = backbone_config_from_json(json{{"model_type", "mistral"}}, "mistral.json");
  EXPECT_EQ(dynamic_cast<const DecoderConfig&>(*mistral).sliding_window, 4096);
  EXPECT_EQ(dynamic_cast<const DecoderConfig&>(*mistral).num_key_value_heads, 8);
  auto unwindowed = backbone_config_from_json(json{{"model_type", "mistral"}, {"sliding_window", nullptr}}, "m.json");
  EXPECT_EQ(dynamic_cast<const DecoderConfig&>(*unwindowed).sliding_window, 0);
  EXPECT_THROW(backbone_config_from_json(json{{"model_type", "qwen2"}, {"use_sliding_window", true}}, "q.json"), InputError);
}

// Meta-Llama-3-8B's config.json (published values), for the DoRA paper's Table 1 shares.
void write_llama3_8b(const fs::path& folder) {
  fs::create_directories(folder);
  testing::write_file(folder / "config.json", json{{"architectures", {"LlamaForCausalLM"}},
                                                   {"model_type", "llama"},
                                                   {"hidden_size", 4096},
                                                   {"intermediate_size", 14336},
                                                   {"num_hidden_layers", 32},
                                                   {"num_attention_heads", 32},
                                                   {"num_key_value_heads", 8},
                                                   {"vocab_size", 128256},
                                                   {"max_position_embeddings", 8192},
                                                   {"rope_theta", 500000.0},
                                                   {"rms_norm_eps", 1e-5},
                                                   {"tie_word_embeddings", false}}
                                                  .dump());
}

TEST(TrainableShare, Llama3_8bMatchesDoraPaperTable1) {
  testing::TempDir dir;
  write_llama3_8b(dir / "llama3");
  auto config = read_model_config(dir / "llama3");
  EXPECT_EQ(config->parameter_count(), 8030261248);  // Meta-Llama-3-8B's published count
  const std::string targets = "targets: [q_proj, k_proj, v_proj, up_proj, down_proj]";
  auto lora = plan_adaptation(*config, *make_method_from_yaml("{name: lora, rank: 32, alpha: 64, " + targets + "}"));
  auto dora = plan_adaptation(*config, *make_method_from_yaml("{name: dora, rank: 32, alpha: 64, " + targets + "}"));
  // Per layer r(in+out): q 32*(4096+4096), k and v 32*(4096+1024), up and down 32*(4096+14336); 32 layers.
  EXPECT_EQ(lora.trainable_params, 32 * (32 * 8192 + 2 * 32 * 5120 + 2 * 32 * 18432));
  EXPECT_EQ(fmt::format("{:.2f}%", 100 * lora.trainable_share()), "0.70%");
  EXPECT_EQ(fmt::format("{:.2f}%", 100 * dora.trainable_share()), "0.71%");
  // The same through the CLI, from a folder holding only config.json.
  auto result = testing::run_cli({"plan", "--model", (dir / "llama3").string(), "--method",
                                  "{name: dora, rank: 32, alpha: 64, " + targets + "}"});
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("(0.71%)"), std::string::npos) << result.output;
}

TEST(PlanCli, EverySharedConfigPlansWithoutWeights) {
  for (const std::string name : {"Llama-2-7b-hf", "TinyLlama-1.1B-Chat-v1.0", "SmolLM2-135M", "Qwen2.5-0.5B"}) {
    auto result = testing::run_cli({"plan", "--model", shared_config(name).string(), "--method", "{name: lora, rank: 8}"});
    ASSERT_EQ(result.status, 0) << name << ": " << result.output;
    EXPECT_NE(result.output.find("q_proj"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("v_proj"), std::string::npos) << result.output;
    EXPECT_EQ(result.output.find("k_proj"), std::string::npos) << result.output;
  }
}

// transformers' _compute_llama3_parameters written as a scalar float64 loop.
std::vector<double> llama3_reference(double theta, int64_t head_dim, double factor, double low, double high, double context) {
  std::vector<double> out;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(theta, -2.0 * i / head_dim), wavelength = 2 * M_PI / freq;
    if (wavelength < context / high) out.push_back(freq);
    else if (wavelength > context / low) out.push_back(freq / factor);
    else {
      const double smooth = (context / wavelength - low) / (high - low);
      out.push_back((1 - smooth) * freq / factor + smooth * freq);
    }
  }
  return out;
}

TEST(RopeScaling, Llama3AndLinearMatchTheClosedForm) {
  // Llama 3.1 8B's values: theta 500000, head_dim 128, factor 8, low 1, high 4, original context 8192.
  auto config = backbone_config_from_json(
      json{{"model_type", "llama"}, {"hidden_size", 4096}, {"num_attention_heads", 32}, {"rope_theta", 500000.0},
           {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                             {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}}},
      "llama31.json");
  auto ours = rope_inverse_frequencies(dynamic_cast<const DecoderConfig&>(*config));
  auto expected = llama3_reference(500000.0, 128, 8.0, 1.0, 4.0, 8192.0);
  ASSERT_EQ(ours.numel(), 64);
  int scaled = 0, kept = 0, blended = 0;
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_NEAR(ours[i].item<double>(), expected[i], 1e-15 * std::abs(expected[i])) << i;
    const double plain = std::pow(500000.0, -2.0 * i / 128);
    if (expected[i] == plain) ++kept;
    else if (std::abs(expected[i] - plain / 8) < 1e-18) ++scaled;
    else ++blended;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(blended, 0);  // all three bands are exercised

  auto linear = backbone_config_from_json(
      json{{"model_type", "llama"}, {"hidden_size", 64}, {"num_attention_heads", 4},
           {"rope_scaling", {{"type", "linear"}, {"factor", 4.0}}}},
      "linear.json");
  auto freqs = rope_inverse_frequencies(dynamic_cast<const DecoderConfig&>(*linear));
  for (int64_t i = 0; i < 8; ++i) {
    const double expected_freq = std::pow(10000.0, -2.0 * i / 16) / 4;
    EXPECT_NEAR(freqs[i].item<double>(), expected_freq, 1e-14 * expected_freq) << i;
  }
  EXPECT_THROW(backbone_config_from_json(json{{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}, "y.json"),
               InputError);
}

TEST(RopeScaling, ModelUsesTheScaledFrequencies) {
  // Same weights, with and without scaling: position 0 has angle 0 either way; later positions differ.
  auto plain = small_model({{"model_type", "llama"}}, 5);
  auto scaled = small_model({{"model_type", "llama"}, {"rope_scaling", {{"type", "linear"}, {"factor", 4.0}}}}, 5);
  torch::NoGradGuard no_grad;
  auto tokens = torch::tensor({{3L, 10L, 20L, 7L}});
  EXPECT_TRUE(torch::allclose(plain->forward(tokens.narrow(1, 0, 1)), scaled->forward(tokens.narrow(1, 0, 1))));
  EXPECT_FALSE(torch::allclose(plain->forward(tokens), scaled->forward(tokens), 1e-4, 1e-5));
}

TEST(SlidingWindow, MaskIsTransformersWindowAlsoWithTheCache) {
  auto model = small_model({{"model_type", "mistral"}, {"sliding_window", 3}});
  auto& decoder = dynamic_cast<DecoderImpl&>(*model);
  BackboneInputs inputs;
  inputs.input_ids = torch::zeros({1, 4}, torch::kLong);
  inputs.start_pos = 5;
  auto allowed = decoder.attention_allowed(inputs, /*past=*/5);  // queries 5..8, keys 0..8
  ASSERT_EQ(allowed.sizes(), torch::IntArrayRef({1, 1, 4, 9}));
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t j = 0; j < 9; ++j) {
      const int64_t i = 5 + t;
      EXPECT_EQ(allowed[0][0][t][j].item<bool>(), i - 3 < j && j <= i) << i << " " << j;
    }
  // Incremental decoding with the cache equals the full forward, where the window hides early keys.
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, 97, {2, 10}, torch::kLong);
  auto full = model->forward(tokens);
  KVCache cache;
  auto first = model->forward(tokens.narrow(1, 0, 6), 0, &cache);
  auto second = model->forward(tokens.narrow(1, 6, 1), 6, &cache);
  auto rest = model->forward(tokens.narrow(1, 7, 3), 7, &cache);
  EXPECT_LT((torch::cat({first, second, rest}, 1) - full).abs().max().item<double>(), 1e-5);
  // The window matters: the same weights without it differ beyond the window, agree within it.
  auto unwindowed = small_model({{"model_type", "mistral"}, {"sliding_window", nullptr}});
  auto source = model->named_parameters();
  for (auto& p : unwindowed->named_parameters()) p.value().copy_(source[p.key()]);
  auto within = tokens.narrow(1, 0, 3);
  EXPECT_TRUE(torch::allclose(unwindowed->forward(within), model->forward(within)));
  EXPECT_FALSE(torch::allclose(unwindowed->forward(tokens), full, 1e-4, 1e-5));
}

TEST(PaddingMask, ScoreHeadReadsTheLastRealToken) {
  auto model = small_model({{"model_type", "qwen2"}, {"tie_word_embeddings", true}});
  auto head = model->make_sequence_head(2);
  torch::NoGradGuard no_grad;
  auto tokens = torch::tensor({{5L, 6L, 7L, 0L, 0L}, {8L, 9L, 10L, 11L, 12L}});
  auto mask = torch::tensor({{1L, 1L, 1L, 0L, 0L}, {1L, 1L, 1L, 1L, 1L}});
  BackboneInputs inputs;
  inputs.input_ids = tokens;
  inputs.attention_mask = mask;
  auto scores = head->forward(model->hidden_states(inputs), mask);
  auto alone = head->forward(model->hidden_states(tokens.narrow(0, 0, 1).narrow(1, 0, 3)), torch::Tensor());
  EXPECT_LT((scores[0] - alone[0]).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(head->hf_key("weight"), "score.weight");
}

TEST(HfFolders, EveryFamilyRoundTripsWithItsConfig) {
  for (const json& family : {json{{"model_type", "llama"}, {"attention_bias", true}, {"mlp_bias", true}},
                             json{{"model_type", "mistral"}, {"sliding_window", 5}},
                             json{{"model_type", "qwen2"}, {"tie_word_embeddings", true}}}) {
    SCOPED_TRACE(family.dump());
    testing::TempDir dir;
    auto model = small_model(family, 3);
    write_hf_folder(*model, dir / "hf");
    auto config = json::parse(testing::read_file(dir / "hf" / "config.json"));
    EXPECT_EQ(config["model_type"], family["model_type"]);
    auto loaded = load_hf_model(dir / "hf");
    EXPECT_EQ(loaded->config().to_hf_json(), model->config().to_hf_json());
    torch::NoGradGuard no_grad;
    auto tokens = torch::randint(0, 97, {2, 12}, torch::kLong);
    EXPECT_TRUE(torch::equal(loaded->forward(tokens), model->forward(tokens)));
  }
}

TEST(PeftExport, SequenceClassificationKeysUseTheFamilyPrefix) {
  testing::TempDir dir;
  auto model = small_model({{"model_type", "qwen2"}, {"tie_word_embeddings", true}});
  auto method = make_method_from_yaml("{name: lora, rank: 2}");
  apply_method(*model, *method, 1);
  auto head = model->make_sequence_head(3);
  PeftExportOptions options;
  options.task_type = "SEQ_CLS";
  for (const auto& item : head->named_parameters()) options.modules_to_save[head->hf_key(item.key())] = item.value();
  export_peft_adapter(*model, *method, dir.path(), options);
  SafetensorsFile weights(dir / "adapter_model.safetensors");
  EXPECT_TRUE(weights.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(weights.contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"));
  EXPECT_TRUE(weights.contains("base_model.model.score.weight"));
  EXPECT_EQ(weights.names().size(), 2u * 2 * 2 + 1);  // 2 layers x (q, v) x (A, B) + head
  auto config = json::parse(testing::read_file(dir / "adapter_config.json"));
  EXPECT_EQ(config["target_modules"], (json{"q_proj", "v_proj"}));  // the family's default
}

TEST(TokenizerMatch, AModelVocabularyLargerThanTheTokenizerIsFine) {
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());  // 512 pieces
  EXPECT_NO_THROW(check_tokenizer_matches(tokenizer, *small({{"vocab_size", 600}})));
  EXPECT_THROW(check_tokenizer_matches(tokenizer, *small({{"vocab_size", 500}})), InputError);
}

}  // namespace
}  // namespace peftlab
