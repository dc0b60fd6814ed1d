// PEFT-format export and import: key names, config fields, round trips into a fresh model (same and Hugging
// Face rotary layout), and strict errors.
#include <gtest/gtest.h>

#include <fstream>

#include "core/hf_checkpoint.h"
#include "core/llama2c.h"
#include "core/safetensors.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "methods/registry.h"
#include "tests/methods/method_test_support.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::max_relative_difference;
using testing::read_json;

struct Exported {
  torch::Tensor logits, tokens, head;
};

// Adapts stories260K with `yaml`, perturbs the adapter, exports it with a score head into `dir`.
Exported adapt_and_export(const std::string& yaml, const std::filesystem::path& dir) {
  torch::manual_seed(11);
  auto model = load_llama2c(testing::stories260k_bin());
  auto method = make_method_from_yaml(yaml);
  apply_method(*model, *method, 3);
  testing::perturb_adapter_parameters(*model);
  Exported e;
  e.tokens = torch::randint(0, 512, {2, 7}, torch::kInt64);
  e.head = torch::randn({3, model->config().hidden_size});
  torch::NoGradGuard no_grad;
  e.logits = model->forward(e.tokens);
  PeftExportOptions options;
  options.task_type = "SEQ_CLS";
  options.modules_to_save["score.weight"] = e.head;
  export_peft_adapter(*model, *method, dir, options);
  return e;
}

class PeftRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(PeftRoundTrip, FreshModelGivesIdenticalOutputs) {
  testing::TempDir tmp;
  auto exported = adapt_and_export(GetParam(), tmp.path());
  auto fresh = load_llama2c(testing::stories260k_bin());
  auto loaded = load_peft_adapter(*fresh, tmp.path());
  EXPECT_EQ(loaded.method->to_json(), make_method_from_yaml(GetParam())->to_json());
  ASSERT_EQ(loaded.modules_to_save.count("score.weight"), 1u);
  EXPECT_TRUE(torch::equal(loaded.modules_to_save["score.weight"], exported.head));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fresh->forward(exported.tokens), exported.logits));
}

TEST_P(PeftRoundTrip, HuggingFaceLayoutModelGivesTheSameOutputs) {
  // The exported adapter is in Hugging Face's rotary layout: loaded into the converted (rotate-half) model it
  // must reproduce the llama2.c model's outputs.
  testing::TempDir tmp;
  auto exported = adapt_and_export(GetParam(), tmp / "adapter");
  write_hf_folder(*load_llama2c(testing::stories260k_bin()), tmp / "hf");
  auto hf = load_hf_model(tmp / "hf");
  // The rows differ between the layouts (otherwise this would not test the permutation).
  ASSERT_FALSE(torch::equal(hf->slot("layers.0.self_attn.q_proj")->weight,
                            load_llama2c(testing::stories260k_bin())->slot("layers.0.self_attn.q_proj")->weight));
  load_peft_adapter(*hf, tmp / "adapter");
  torch::NoGradGuard no_grad;
  EXPECT_LE(max_relative_difference(hf->forward(exported.tokens), exported.logits), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Methods, PeftRoundTrip,
                         ::testing::Values("{name: lora, rank: 4, targets: all-linear}",
                                           "{name: dora, rank: 2, alpha: 4, targets: [q_proj, k_proj, v_proj]}",
                                           "{name: bora, rank: 2, order: in_first, targets: all-linear}",
                                           "{name: bora, rank: 0, targets: [q_proj, k_proj]}",
                                           "{name: lora, rank: 4, targets: 'regex:layers\\.[01]\\..*',"
                                           " overrides: [{pattern: k_proj, rank: 2, alpha: 3}]}"));

TEST(PeftFormat, KeysAndConfigFollowPeft) {
  testing::TempDir tmp;
  adapt_and_export("{name: dora, rank: 2, alpha: 4, rslora: true, targets: [q_proj, v_proj],"
                   " overrides: [{pattern: 'layers\\.1\\.self_attn\\.v_proj', rank: 1}]}",
                   tmp.path());
  SafetensorsFile weights(tmp / "adapter_model.safetensors");
  auto names = weights.names();
  EXPECT_EQ(names.size(), 5u * 2 * 3 + 1);  // 5 layers x 2 modules x (A, B, m) + head
  const std::string q0 = "base_model.model.model.layers.0.self_attn.q_proj.";
  EXPECT_TRUE(weights.contains(q0 + "lora_A.weight"));
  EXPECT_TRUE(weights.contains(q0 + "lora_B.weight"));
  EXPECT_TRUE(weights.contains(q0 + "lora_magnitude_vector"));
  EXPECT_TRUE(weights.contains("base_model.model.score.weight"));
  EXPECT_EQ(weights.info(q0 + "lora_A.weight").shape, (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(weights.info(q0 + "lora_B.weight").shape, (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(weights.info("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight").shape,
            (std::vector<int64_t>{1, 64}));
  auto config = read_json(tmp / "adapter_config.json");
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "SEQ_CLS");
  EXPECT_EQ(config["r"], 2);
  EXPECT_EQ(config["lora_alpha"], 4.0);
  EXPECT_EQ(config["use_dora"], true);
  EXPECT_EQ(config["use_rslora"], true);
  EXPECT_EQ(config["target_modules"], (nlohmann::json{"q_proj", "v_proj"}));
  EXPECT_EQ(config["rank_pattern"], (nlohmann::json{{"model.layers.1.self_attn.v_proj", 1}}));
  EXPECT_EQ(config["modules_to_save"], (nlohmann::json{"score"}));
  EXPECT_EQ(config["peftlab"]["method"]["name"], "dora");
}

TEST(PeftFormat, BoraColumnMagnitudeKey) {
  testing::TempDir tmp;
  adapt_and_export("{name: bora, rank: 1, targets: o_proj}", tmp.path());
  SafetensorsFile weights(tmp / "adapter_model.safetensors");
  const std::string o0 = "base_model.model.model.layers.0.self_attn.o_proj.";
  EXPECT_EQ(weights.info(o0 + "lora_magnitude_vector").shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(weights.info(o0 + "lora_magnitude_vector_in").shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(read_json(tmp / "adapter_config.json")["use_dora"], false);
}

TEST(PeftFormat, PlainPeftConfigWithoutPeftlabBlockLoads) {
  testing::TempDir tmp;
  auto exported = adapt_and_export("{name: dora, rank: 2, alpha: 4, targets: [q_proj, v_proj],"
                                   " overrides: [{pattern: 'layers\\.1\\.self_attn\\.v_proj', rank: 1}]}",
                                   tmp.path());
  auto config = read_json(tmp / "adapter_config.json");
  config.erase("peftlab");  // as PEFT itself would write it
  std::ofstream(tmp / "adapter_config.json") << config.dump();
  auto fresh = load_llama2c(testing::stories260k_bin());
  auto loaded = load_peft_adapter(*fresh, tmp.path());
  EXPECT_EQ(loaded.method->name(), "dora");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fresh->forward(exported.tokens), exported.logits));
}

TEST(PeftFormat, ProblemsAreInputErrors) {
  testing::TempDir tmp;
  adapt_and_export("{name: lora, rank: 2}", tmp.path());
  // A different rank in the config than in the weights.
  auto config = read_json(tmp / "adapter_config.json");
  config["peftlab"]["method"]["rank"] = 3;
  std::ofstream(tmp / "adapter_config.json") << config.dump();
  auto fresh = load_llama2c(testing::stories260k_bin());
  try {
    load_peft_adapter(*fresh, tmp.path());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape 2x64, expected 3x64"), std::string::npos) << e.what();
  }
  std::ofstream(tmp / "adapter_config.json") << "{not json";
  EXPECT_THROW(load_peft_adapter(*load_llama2c(testing::stories260k_bin()), tmp.path()), InputError);
  auto full = make_method_from_yaml("{name: full}");
  EXPECT_THROW(export_peft_adapter(*fresh, *full, tmp / "x"), InputError);
}

}  // namespace
}  // namespace peftlab
