// The tiled causal-LM loss against the unfused route: the logits tensor, LibTorch's cross_entropy, and
// autograd through both, in float64. The tiled function computes its own backward (softmax - one-hot per
// tile), so the gradients are an independent check of it. Tiles that do not divide the rows, a one-row tile
// and a tile larger than the input, and ignored targets are all covered.
#include <gtest/gtest.h>

#include "core/llama2c.h"
#include "core/lm_loss.h"
#include "core/precision.h"
#include "experiments/task_model.h"
#include "methods/adaptation.h"
#include "methods/registry.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace F = torch::nn::functional;

double largest_difference(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(TiledLoss, EqualsUnfusedCrossEntropyAndItsGradientsInFloat64) {
  torch::manual_seed(0);
  const int64_t rows = 23, width = 16, vocab = 50;
  auto hidden = torch::randn({rows, width}, torch::kFloat64).requires_grad_();
  auto weight = torch::randn({vocab, width}, torch::kFloat64).requires_grad_();
  auto targets = torch::randint(vocab, {rows}, torch::kLong);
  targets[3] = -100, targets[17] = -100;
  auto upstream = torch::randn({rows}, torch::kFloat64);  // an arbitrary weighting of the per-token losses

  auto reference = F::cross_entropy(torch::mm(hidden, weight.t()), targets,
                                    F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone));
  auto reference_grads = torch::autograd::grad({(reference * upstream).sum()}, {hidden, weight});
  EXPECT_EQ(reference[3].item<double>(), 0.0);

  // A frozen projection (every adapter method): the hidden states' gradient is formed in the forward pass.
  auto frozen = weight.detach();
  auto frozen_grad = torch::autograd::grad({(F::cross_entropy(torch::mm(hidden, frozen.t()), targets,
                                                              F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone)) *
                                              upstream).sum()},
                                           {hidden})[0];
  for (int64_t tile_rows : {1, 5, 23, 64}) {
    auto nll = tiled_token_nll(hidden, frozen, targets, -100, tile_rows);
    EXPECT_LT(largest_difference(nll, reference), 1e-12) << tile_rows;
    auto grad = torch::autograd::grad({(nll * upstream).sum()}, {hidden})[0];
    EXPECT_LT(largest_difference(grad, frozen_grad), 1e-12) << "frozen weight, tile " << tile_rows;
  }
  // A trained projection (full fine-tuning): both gradients, each tile's logits computed again in backward.
  for (int64_t tile_rows : {1, 5, 23, 64}) {
    auto nll = tiled_token_nll(hidden, weight, targets, -100, tile_rows);
    EXPECT_LT(largest_difference(nll, reference), 1e-12) << tile_rows;
    EXPECT_EQ(nll[17].item<double>(), 0.0) << tile_rows;
    auto grads = torch::autograd::grad({(nll * upstream).sum()}, {hidden, weight});
    EXPECT_LT(largest_difference(grads[0], reference_grads[0]), 1e-12) << tile_rows;
    EXPECT_LT(largest_difference(grads[1], reference_grads[1]), 1e-12) << tile_rows;
    EXPECT_GT(grads[1].abs().max().item<double>(), 1e-3);  // the check above compares something
  }
}

// A next-token batch of two rows, the second's last positions not scored (as right padding is).
Batch random_next_token_batch(int64_t vocab) {
  auto generator = at::detail::createCPUGenerator(7);
  Batch batch;
  batch.input_ids = torch::randint(vocab, {2, 24}, generator, torch::kLong);
  batch.labels = batch.input_ids.clone();
  batch.labels[1].narrow(0, 18, 6).fill_(-100);
  batch.attention_mask = torch::ones_like(batch.input_ids);
  return batch;
}

// Loss and every trainable gradient of one step of `method` on stories260K in float64.
std::pair<double, std::vector<torch::Tensor>> adapted_step(const std::string& method_yaml, bool tiled) {
  Backbone backbone = load_llama2c(testing::stories260k_bin());
  backbone->to(torch::kFloat64);
  apply_method(*backbone, *make_method_from_yaml(method_yaml), 3);
  TaskModel model(backbone, TaskKind::CausalLM, 0);
  model->set_tiled_lm_loss(tiled);
  auto loss = model->loss(random_next_token_batch(backbone->config().vocab_size));
  loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) grads.push_back(p.grad().clone());
  return {loss.item<double>(), grads};
}

TEST(TiledLoss, Stories260kStepEqualsTheUnfusedStepInFloat64) {
  // full trains the tied output embedding (the loss's weight gradient); LoRA only the hidden-state route.
  for (const std::string method : {"{name: full}", "{name: lora, rank: 4, targets: all-linear}"}) {
    auto [tiled_loss, tiled_grads] = adapted_step(method, true);
    auto [plain_loss, plain_grads] = adapted_step(method, false);
    EXPECT_NEAR(tiled_loss, plain_loss, 1e-12) << method;
    ASSERT_EQ(tiled_grads.size(), plain_grads.size());
    for (size_t i = 0; i < tiled_grads.size(); ++i)
      EXPECT_LT(largest_difference(tiled_grads[i], plain_grads[i]), 1e-12) << method << " parameter " << i;
  }
}

TEST(TiledLoss, Bf16AutocastRunsTheProjectionInBf16LikeTheUnfusedPath) {
  Backbone backbone = load_llama2c(testing::stories260k_bin());
  TaskModel model(backbone, TaskKind::CausalLM, 0);
  const Batch batch = random_next_token_batch(backbone->config().vocab_size);
  torch::NoGradGuard no_grad;
  AutocastScope autocast(Precision::bf16);
  model->set_tiled_lm_loss(true);
  const double tiled = model->loss(batch).item<double>();
  model->set_tiled_lm_loss(false);
  const double plain = model->loss(batch).item<double>();
  // Both project in bfloat16 (8 significant bits) and take the softmax in float32.
  EXPECT_NEAR(tiled, plain, 1e-3 * std::abs(plain));
}

}  // namespace
}  // namespace peftlab
