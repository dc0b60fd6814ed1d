// PiSSA against its paper's definition, in float64: A0, B0 span the top-r singular subspace of W0 (found here
// from the eigendecomposition of W0^T W0, another route than the SVD the method uses), split symmetrically
// (A0 A0^T = B0^T B0 = diag(S_r / s)); the frozen weight is the residual; the pretrained W0 stays available for the
// decomposition statistics; the PEFT export is a LoRA of rank 2r on the pretrained W0 (PEFT's conversion).
#include <gtest/gtest.h>

#include <fstream>

#include "core/llama2c.h"
#include "core/safetensors.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "methods/registry.h"
#include "tests/methods/method_test_support.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

double relative(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

TEST(Pissa, InitialisationIsTheTopRSingularSubspaceOfW0AndTheWeightTheResidual) {
  auto model = load_llama2c(testing::stories260k_bin());
  std::map<std::string, torch::Tensor> W0;
  for (const auto& slot : model->slots()) W0[slot->slot_name()] = slot->weight.detach().to(torch::kFloat64).clone();
  auto method = make_method_from_yaml("{name: pissa, rank: 4, alpha: 8, targets: all-linear}");
  auto plan = apply_method(*model, *method, 7);
  ASSERT_EQ(plan.slots.size(), model->slots().size());
  torch::NoGradGuard no_grad;
  for (const auto& s : plan.slots) {
    SCOPED_TRACE(s.slot);
    auto slot = model->slot(s.slot);
    auto t = testing::adapter_tensors(*slot->adapter());
    auto A0 = t.at("lora_A").to(torch::kFloat64), B0 = t.at("lora_B").to(torch::kFloat64);
    const auto& w = W0[s.slot];
    // The top-r right singular vectors of W0 are the eigenvectors of W0^T W0 with the r largest eigenvalues.
    auto [eigenvalues, eigenvectors] = torch::linalg::eigh(torch::mm(w.t(), w), "L");
    const int64_t n = eigenvalues.size(0), r = s.rank;
    auto V_r = eigenvectors.narrow(1, n - r, r);
    auto top = torch::mm(torch::mm(w, V_r), V_r.t());  // U_r S_r V_r^T, the best rank-r approximation
    EXPECT_LE(relative(s.scaling * torch::mm(B0, A0), top), 1e-5);
    EXPECT_LE(relative(slot->weight.to(torch::kFloat64), w - top), 1e-5);
    // Split symmetrically: A0 A0^T = B0^T B0 = diag(S_r / s), S_r^2 the top eigenvalues.
    auto expected = torch::diag(torch::sqrt(std::get<0>(eigenvalues.narrow(0, n - r, r).sort(0, true))) / s.scaling);
    EXPECT_LE(relative(torch::mm(A0, A0.t()), expected), 1e-4);
    EXPECT_LE(relative(torch::mm(B0.t(), B0), expected), 1e-4);
    // W' = W_res + s B A is W0, and the pretrained weight the statistics compare against is W0 too.
    EXPECT_LE(relative(slot->effective_weight().to(torch::kFloat64), w), 1e-6);
    EXPECT_LE(relative(slot->pretrained_weight().to(torch::kFloat64), w), 1e-6);
  }
  // After training steps (perturbed A, B) the pretrained weight is still W0, merged or not.
  testing::perturb_adapter_parameters(*model);
  auto slot = model->slot(plan.slots.front().slot);
  EXPECT_LE(relative(slot->pretrained_weight().to(torch::kFloat64), W0[slot->slot_name()]), 1e-6);
  EXPECT_GT(relative(slot->effective_weight().to(torch::kFloat64), W0[slot->slot_name()]), 1e-3);
  slot->merge();
  EXPECT_LE(relative(slot->pretrained_weight().to(torch::kFloat64), W0[slot->slot_name()]), 1e-6);
  slot->unmerge();
}

TEST(Pissa, PeftExportIsALoraOfTwiceTheRankOnThePretrainedWeight) {
  testing::TempDir tmp;
  torch::manual_seed(5);
  auto model = load_llama2c(testing::stories260k_bin());
  auto method = make_method_from_yaml(
      "{name: pissa, rank: 2, alpha: 4, targets: [q_proj, v_proj], overrides: [{pattern: 'layers\\.1\\.self_attn\\.v_proj', rank: 1}]}");
  apply_method(*model, *method, 3);
  testing::perturb_adapter_parameters(*model);
  auto tokens = torch::randint(0, 512, {2, 7}, torch::kInt64);
  torch::Tensor trained;
  {
    torch::NoGradGuard no_grad;
    trained = model->forward(tokens);
  }
  export_peft_adapter(*model, *method, tmp.path());
  // PEFT's converted adapter (save_pretrained with path_initial_model_for_weight_conversion): a plain LoRA,
  // r and lora_alpha doubled, rank_pattern doubled, init_lora_weights true.
  std::ifstream in(tmp / "adapter_config.json");
  auto config = nlohmann::json::parse(in);
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 8.0);
  EXPECT_EQ(config["use_dora"], false);
  EXPECT_EQ(config["init_lora_weights"], true);
  EXPECT_EQ(config["rank_pattern"], (nlohmann::json{{"model.layers.1.self_attn.v_proj", 2}}));
  EXPECT_EQ(config["peftlab"]["method"]["name"], "lora");
  SafetensorsFile weights(tmp / "adapter_model.safetensors");
  const std::string q0 = "base_model.model.model.layers.0.self_attn.q_proj.";
  EXPECT_EQ(weights.info(q0 + "lora_A.weight").shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(weights.info(q0 + "lora_B.weight").shape, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(weights.names().size(), 5u * 2 * 2);  // 5 layers x (q, v) x (A, B)
  // Loaded onto the pretrained model (W0, not the residual), it computes what the trained PiSSA model does.
  auto fresh = load_llama2c(testing::stories260k_bin());
  auto loaded = load_peft_adapter(*fresh, tmp.path());
  EXPECT_EQ(loaded.method->name(), "lora");
  torch::NoGradGuard no_grad;
  EXPECT_LE(relative(fresh->forward(tokens), trained), 1e-5);
}

}  // namespace
}  // namespace peftlab
