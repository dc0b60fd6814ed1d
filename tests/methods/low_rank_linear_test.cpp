// LoRA's, DoRA's and BoRA's one-node layer against the same formula composed from LibTorch operations and
// differentiated by autograd: outputs and every gradient, with and without dropout (same seed, same mask),
// rank 0, a trained W0, an exactly zero output scale, and under bf16 autocast.
#include <gtest/gtest.h>

#include "core/precision.h"
#include "methods/low_rank_linear.h"
#include "tests/methods/method_test_support.h"

namespace peftlab {
namespace {

using testing::max_relative_difference;
namespace F = torch::nn::functional;

enum class Scales { none, out, out_and_in };  // LoRA, DoRA, BoRA

struct Case {
  Scales scales;
  int64_t rank;
  double dropout;
  bool train_base;    // W0 requires grad
  bool zero_scale;    // one output scale exactly zero
  int64_t rows = 3, in = 12, out = 10;  // x is (2, rows, in)
};

// The leaves both forms differentiate: fresh copies, so that the gradients of one form do not mix with the other's.
struct Leaves {
  torch::Tensor x, W0, A, B, out_scale, in_scale;
  std::vector<torch::Tensor> all() const {
    std::vector<torch::Tensor> v{x, W0};
    if (out_scale.defined()) v.push_back(out_scale);
    if (A.defined()) v.push_back(A), v.push_back(B);
    if (in_scale.defined()) v.push_back(in_scale);
    return v;
  }
};

Leaves make_leaves(const Case& c, torch::Dtype dtype) {
  torch::manual_seed(7);
  const int64_t in = c.in, out = c.out;
  auto leaf = [&](torch::Tensor t, bool grad = true) { return t.to(dtype).detach().requires_grad_(grad); };
  Leaves l;
  l.x = leaf(torch::randn({2, c.rows, in}, torch::kFloat64));
  l.W0 = leaf(torch::randn({out, in}, torch::kFloat64), c.train_base);
  if (c.rank > 0) l.A = leaf(torch::randn({c.rank, in}, torch::kFloat64)), l.B = leaf(torch::randn({out, c.rank}, torch::kFloat64));
  auto out_scale = torch::rand({out}, torch::kFloat64) + 0.5;
  if (c.zero_scale) out_scale[3] = 0.0;
  if (c.scales != Scales::none) l.out_scale = leaf(out_scale);
  if (c.scales == Scales::out_and_in) l.in_scale = leaf(torch::rand({in}, torch::kFloat64) + 0.5);
  return l;
}

// x enters as a layer's input does, computed from a leaf: autocast caches its casts of leaves only.
torch::Tensor composed(const Leaves& l, const Case& c, double scaling) {
  auto x = l.x.clone();
  auto u = l.in_scale.defined() ? x * l.in_scale : x;
  auto t = F::linear(u, l.W0);
  if (l.A.defined()) t = t + F::linear(F::linear(torch::dropout(u, c.dropout, true), l.A), l.B) * scaling;
  return l.out_scale.defined() ? t * l.out_scale : t;
}

torch::Tensor fused(const Leaves& l, const Case& c, double scaling) {
  return low_rank_linear(l.x.clone(), {l.W0, l.A, l.B, l.out_scale, l.in_scale, scaling, c.dropout, true});
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (Scales scales : {Scales::none, Scales::out, Scales::out_and_in})
    for (int64_t rank : {0, 4})
      for (double dropout : {0.0, 0.3})
        if (scales != Scales::none || rank > 0) v.push_back({scales, rank, dropout, false, false});
  v.push_back({Scales::none, 4, 0.0, true, false});
  v.push_back({Scales::out_and_in, 4, 0.0, true, false});
  v.push_back({Scales::out, 4, 0.3, false, true});
  v.push_back({Scales::out_and_in, 4, 0.0, true, true});
  return v;
}

std::string describe(const Case& c) {
  const char* method = c.scales == Scales::none ? "lora" : c.scales == Scales::out ? "dora" : "bora";
  return fmt::format("{} rank {} dropout {}{}{}", method, c.rank, c.dropout,
                     c.train_base ? " trained W0" : "", c.zero_scale ? " zero scale" : "");
}

// Runs both forms on identical leaves and seeds; returns the worst relative difference of y and each gradient.
void expect_forms_agree(const Case& c, torch::Dtype dtype, double tolerance, bool autocast) {
  const double scaling = 0.75;
  const auto upstream = torch::randn({2, c.rows, c.out}, torch::kFloat64);
  auto run = [&](bool use_fused) {
    Leaves l = make_leaves(c, dtype);
    torch::manual_seed(11);  // the dropout mask
    torch::Tensor y;
    {
      std::optional<AutocastScope> scope;
      if (autocast) scope.emplace(Precision::bf16);
      y = use_fused ? fused(l, c, scaling) : composed(l, c, scaling);
    }
    (y * upstream.to(y.scalar_type())).sum().backward();
    std::vector<torch::Tensor> results{y.detach()};
    for (const auto& leaf : l.all())
      if (leaf.requires_grad()) results.push_back(leaf.grad());
    return results;
  };
  const auto ours = run(true), theirs = run(false);
  ASSERT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    SCOPED_TRACE(i == 0 ? std::string("y") : fmt::format("gradient {}", i));
    ASSERT_TRUE(ours[i].defined());
    if (i == 0 && autocast) EXPECT_EQ(ours[i].scalar_type(), torch::kBFloat16);  // the matmuls ran in bf16
    else EXPECT_EQ(ours[i].scalar_type(), theirs[i].scalar_type());
    EXPECT_GT(theirs[i].abs().max().item<double>(), 0.0) << "a zero gradient proves nothing";
    EXPECT_LE(max_relative_difference(ours[i].to(torch::kFloat64), theirs[i].to(torch::kFloat64)), tolerance);
  }
}

TEST(LowRankLinear, EqualsTheComposedFormAndItsAutogradGradientsInFloat64) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(describe(c));
    expect_forms_agree(c, torch::kFloat64, 1e-12, false);
  }
}

TEST(LowRankLinear, EqualsTheComposedFormUnderBf16Autocast) {
  // bfloat16 matmuls in both; the node scales weights where the composed form scales activations, so the two
  // round at different points: they agree to a few bfloat16 units (2^-8 each).
  for (const auto& c : cases()) {
    SCOPED_TRACE(describe(c));
    expect_forms_agree(c, torch::kFloat32, 3e-2, true);
  }
}

// The magnitudes' gradients are sums over tokens taken a block of rows at a time (2^20 elements): 9000 tokens of
// width 256 make three blocks, the last one short.
TEST(LowRankLinear, ManyTokensSumInBlocksAsInOne) {
  for (Scales scales : {Scales::out, Scales::out_and_in}) {
    Case c{scales, 4, 0.1, false, false, 4500, 256, 256};
    SCOPED_TRACE(describe(c));
    expect_forms_agree(c, torch::kFloat64, 1e-12, false);
  }
}

TEST(LowRankLinear, DropoutIsOffOutsideTrainingAndWithoutGradients) {
  Case c{Scales::out_and_in, 4, 0.5, false, false};
  Leaves l = make_leaves(c, torch::kFloat64);
  auto expected = composed(l, {Scales::out_and_in, 4, 0.0, false, false}, 0.5);
  auto eval = low_rank_linear(l.x, {l.W0, l.A, l.B, l.out_scale, l.in_scale, 0.5, 0.5, false});
  EXPECT_LE(max_relative_difference(eval, expected), 1e-14);
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  auto plain = low_rank_linear(l.x, {l.W0, l.A, l.B, l.out_scale, l.in_scale, 0.5, 0.5, true});
  torch::manual_seed(3);
  auto reference = composed(l, c, 0.5);
  EXPECT_LE(max_relative_difference(plain, reference), 1e-14);  // unrecorded training forward: same mask
  EXPECT_GT(max_relative_difference(plain, expected), 1e-3);     // and the mask really dropped something
}

}  // namespace
}  // namespace peftlab
