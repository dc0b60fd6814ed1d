// The shared training step under its two memory/speed options: activation checkpointing must not change a
// single number (same gradients, same dropout masks, same next step), and bf16 autocast must really run the
// matmuls in bfloat16 while the weights the optimizer updates stay float32.
#include <gtest/gtest.h>

#include "bench/benchmark.h"
#include "core/llama2c.h"
#include "core/precision.h"
#include "experiments/training_step.h"
#include "methods/adaptation.h"
#include "methods/registry.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

struct Trained {
  std::vector<double> losses;
  std::vector<torch::Tensor> first_gradients;  // after step 1
  std::vector<torch::Tensor> weights;          // after the last step
};

// Two steps of `method` on stories260K from the same seed; the second step sees the dropout stream the first
// one left behind.
Trained train_two_steps(const std::string& method_yaml, bool checkpointing, const std::string& precision) {
  torch::manual_seed(7);
  Backbone backbone = load_llama2c(testing::stories260k_bin());
  auto method = make_method_from_yaml(method_yaml);
  apply_method(*backbone, *method, 11);
  backbone->set_activation_checkpointing(checkpointing);
  TaskModel model(backbone, TaskKind::CausalLM, 0);
  model->train();
  TrainConfig train;
  train.lr = 1e-2;
  train.precision = precision;
  auto optimizer = make_optimizer(*model, train);
  const Batch batch = random_token_batch(backbone->config().vocab_size, 4, 64, 3);
  DataParallel one_process;
  Trained out;
  torch::manual_seed(5);  // the dropout stream
  for (int step = 0; step < 2; ++step) {
    auto result = training_step(*model, *optimizer, [&] { return batch; }, train, one_process);
    EXPECT_TRUE(result.stepped);
    out.losses.push_back(result.loss);
    if (step == 0)
      for (const auto& p : optimizer_parameters(*optimizer)) out.first_gradients.push_back(p.grad().clone());
  }
  for (const auto& p : optimizer_parameters(*optimizer)) out.weights.push_back(p.detach().clone());
  return out;
}

void expect_same(const Trained& a, const Trained& b, double tolerance) {
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i) EXPECT_NEAR(a.losses[i], b.losses[i], tolerance * std::abs(a.losses[i]));
  ASSERT_EQ(a.first_gradients.size(), b.first_gradients.size());
  ASSERT_FALSE(a.first_gradients.empty());
  for (size_t i = 0; i < a.first_gradients.size(); ++i) {
    const double scale = a.first_gradients[i].abs().max().item<double>() + 1e-12;
    EXPECT_LE((a.first_gradients[i] - b.first_gradients[i]).abs().max().item<double>(), tolerance * scale) << i;
    EXPECT_LE((a.weights[i] - b.weights[i]).abs().max().item<double>(), tolerance * (a.weights[i].abs().max().item<double>() + 1e-12)) << i;
  }
}

TEST(TrainingStep, ActivationCheckpointingGivesTheSameGradientsWithDropout) {
  // Dropout 0.2 makes the recompute depend on replaying the random stream; the second step depends on the
  // stream being put back afterwards.
  const auto lora = train_two_steps("{name: lora, rank: 4, dropout: 0.2}", false, "fp32");
  const auto lora_ckpt = train_two_steps("{name: lora, rank: 4, dropout: 0.2}", true, "fp32");
  expect_same(lora, lora_ckpt, 1e-5);
  // A wrong replay would show: the same run without the dropout differs.
  const auto no_dropout = train_two_steps("{name: lora, rank: 4}", false, "fp32");
  EXPECT_GT(std::abs(no_dropout.losses[1] - lora.losses[1]), 1e-4);
}

TEST(TrainingStep, ActivationCheckpointingMatchesForBoraAndFullFineTuning) {
  expect_same(train_two_steps("{name: bora, rank: 4}", false, "fp32"),
              train_two_steps("{name: bora, rank: 4}", true, "fp32"), 1e-5);
  // Full fine-tuning: the embedding trains, so the first layer's input needs its gradient too.
  expect_same(train_two_steps("{name: full}", false, "fp32"), train_two_steps("{name: full}", true, "fp32"), 1e-5);
}

TEST(TrainingStep, Bf16AutocastRunsInBfloat16WithFloat32MasterWeights) {
  const auto fp32 = train_two_steps("{name: dora, rank: 4}", false, "fp32");
  const auto bf16 = train_two_steps("{name: dora, rank: 4}", false, "bf16");
  // bfloat16 keeps 8 bits of mantissa: the loss moves by ~1e-3 relative, not 1e-7 (so autocast really ran) ...
  const double relative = std::abs(bf16.losses[0] - fp32.losses[0]) / fp32.losses[0];
  EXPECT_GT(relative, 1e-6);
  EXPECT_LT(relative, 2e-2);
  // ... and the weights the optimizer updates are float32.
  for (const auto& w : bf16.weights) EXPECT_EQ(w.scalar_type(), torch::kFloat32);
  // Checkpointing composes with autocast (the recompute runs under the forward's autocast state).
  expect_same(bf16, train_two_steps("{name: dora, rank: 4}", true, "bf16"), 1e-5);
}

TEST(TrainingStep, AutocastScopeRestoresThePreviousState) {
  const auto before = AutocastState::current();
  {
    AutocastScope scope(Precision::bf16);
    EXPECT_TRUE(AutocastState::current().cpu);
    auto y = torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(AutocastState::current().cpu, before.cpu);
  EXPECT_EQ(torch::mm(torch::ones({2, 2}), torch::ones({2, 2})).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace peftlab
