// VeRA against its paper and PEFT's layout: one pair of frozen projections shared by every adapted slot (PEFT's
// sizes: the largest in and out features, sliced per slot; Kaiming-uniform bounds), lambda_b = 0 and
// lambda_d = d_initial at initialisation, only the vectors train; the export carries PEFT's keys
// (base_model.vera_A, base_model.vera_B, <module>.vera_lambda_b, <module>.vera_lambda_d) and VeraConfig's fields.
#include <gtest/gtest.h>

#include <cmath>
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

using testing::read_json;

TEST(Vera, ProjectionsAreSharedFrozenAndSizedForTheLargestSlot) {
  auto model = load_llama2c(testing::stories260k_bin());
  auto method = make_method_from_yaml("{name: vera, rank: 4, targets: all-linear}");
  auto plan = apply_method(*model, *method, 7);
  int64_t max_in = 0, max_out = 0;
  for (const auto& s : plan.slots) max_in = std::max(max_in, s.in_features), max_out = std::max(max_out, s.out_features);
  ASSERT_GT(max_in, 64);  // the slots differ in shape (down_proj reads the 172-wide MLP)
  const void* shared_a = nullptr;
  for (const auto& s : plan.slots) {
    SCOPED_TRACE(s.slot);
    auto t = testing::adapter_tensors(*model->slot(s.slot)->adapter());
    const auto& A = t.at("shared.vera_A");
    const auto& B = t.at("shared.vera_B");
    EXPECT_EQ(A.sizes().vec(), (std::vector<int64_t>{4, max_in}));
    EXPECT_EQ(B.sizes().vec(), (std::vector<int64_t>{max_out, 4}));
    if (shared_a == nullptr) shared_a = A.data_ptr();
    EXPECT_EQ(A.data_ptr(), shared_a) << "every slot shares one A";
    EXPECT_FALSE(A.requires_grad());
    EXPECT_FALSE(B.requires_grad());
    EXPECT_LE(A.abs().max().item<double>(), std::sqrt(6.0 / max_in));
    EXPECT_LE(B.abs().max().item<double>(), std::sqrt(6.0 / 4));
    EXPECT_GT(A.abs().max().item<double>(), 0.5 * std::sqrt(6.0 / max_in));
    EXPECT_TRUE(torch::equal(t.at("lambda_b"), torch::zeros({s.out_features})));
    EXPECT_TRUE(torch::allclose(t.at("lambda_d"), torch::full({4}, 0.1)));
    int64_t trainable = 0;
    for (const auto& p : model->slot(s.slot)->adapter()->parameters()) trainable += p.requires_grad() ? p.numel() : 0;
    EXPECT_EQ(trainable, s.out_features + 4);
  }
}

TEST(Vera, PeftExportCarriesPeftKeysAndConfigAndLoadsBack) {
  testing::TempDir tmp;
  write_hf_folder(*load_llama2c(testing::stories260k_bin()), tmp / "hf");
  auto model = load_hf_model(tmp / "hf");
  auto method = make_method_from_yaml("{name: vera, rank: 4, d_initial: 0.2, targets: [q_proj, v_proj]}");
  apply_method(*model, *method, 3);
  torch::manual_seed(3);
  testing::perturb_adapter_parameters(*model);
  auto tokens = torch::randint(0, 512, {2, 7}, torch::kInt64);
  torch::Tensor trained;
  {
    torch::NoGradGuard no_grad;
    trained = model->forward(tokens);
  }
  export_peft_adapter(*model, *method, tmp / "adapter");
  SafetensorsFile weights(tmp / "adapter" / "adapter_model.safetensors");
  const std::string q0 = "base_model.model.model.layers.0.self_attn.q_proj.";
  EXPECT_EQ(weights.info("base_model.vera_A").shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(weights.info("base_model.vera_B").shape, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(weights.info(q0 + "vera_lambda_b").shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(weights.info(q0 + "vera_lambda_d").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(weights.names().size(), 2u + 5 * 2 * 2);  // A, B + 5 layers x (q, v) x (lambda_b, lambda_d)
  auto config = read_json(tmp / "adapter" / "adapter_config.json");
  EXPECT_EQ(config["peft_type"], "VERA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["d_initial"], 0.2);
  EXPECT_EQ(config["vera_dropout"], 0.0);
  EXPECT_EQ(config["save_projection"], true);
  EXPECT_TRUE(config["projection_prng_key"].is_number_integer());
  EXPECT_EQ(config["target_modules"], (nlohmann::json{"q_proj", "v_proj"}));
  EXPECT_FALSE(config.contains("lora_alpha"));
  EXPECT_FALSE(config.contains("rank_pattern"));
  for (bool with_peftlab_block : {true, false}) {
    SCOPED_TRACE(with_peftlab_block ? "peftlab block" : "PEFT's fields only");
    if (!with_peftlab_block) {
      config.erase("peftlab");
      std::ofstream(tmp / "adapter" / "adapter_config.json") << config.dump();
    }
    auto fresh = load_hf_model(tmp / "hf");
    auto loaded = load_peft_adapter(*fresh, tmp / "adapter");
    EXPECT_EQ(loaded.method->to_json(), method->to_json());
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(fresh->forward(tokens), trained));
  }
}

TEST(Vera, SharedProjectionsCannotBePermutedPerModule) {
  // llama2.c keeps q/k rows interleaved; a B shared with v_proj cannot be permuted for q_proj alone.
  testing::TempDir tmp;
  auto model = load_llama2c(testing::stories260k_bin());
  auto qv = make_method_from_yaml("{name: vera, rank: 2, targets: [q_proj, v_proj]}");
  apply_method(*model, *qv, 1);
  EXPECT_THROW(export_peft_adapter(*model, *qv, tmp / "qv"), InputError);
  auto plain = load_llama2c(testing::stories260k_bin());
  auto v = make_method_from_yaml("{name: vera, rank: 2, targets: [v_proj, down_proj]}");
  apply_method(*plain, *v, 1);
  EXPECT_NO_THROW(export_peft_adapter(*plain, *v, tmp / "v"));
}

}  // namespace
}  // namespace peftlab
