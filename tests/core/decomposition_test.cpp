// decomposition_stats against hand-worked cases and a plain-loop float64 reference.
#include "core/decomposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace peftlab {
namespace {

torch::Tensor matrix(std::vector<std::vector<double>> rows) {
  auto out = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, torch::kFloat64);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) out[i][j] = rows[i][j];
  return out;
}

TEST(Decomposition, ScaledWeightKeepsDirectionAndScalesMagnitude) {
  // Rows (3,4) and (6,8) have norms 5 and 10; columns (3,6), (4,8) have norms sqrt(45), sqrt(80).
  torch::Tensor w0 = matrix({{3, 4}, {6, 8}});
  DecompositionStats s = decomposition_stats(2.0 * w0, w0);
  EXPECT_NEAR(s.dD_row, 0.0, 1e-15);
  EXPECT_NEAR(s.dD_col, 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.dM_row, (5.0 + 10.0) / 2);  // |2n - n| = n
  EXPECT_DOUBLE_EQ(s.dM_col, (std::sqrt(45.0) + std::sqrt(80.0)) / 2);
  EXPECT_DOUBLE_EQ(s.m_row[0].item<double>(), 10.0);
  EXPECT_DOUBLE_EQ(s.m_row[1].item<double>(), 20.0);
  EXPECT_DOUBLE_EQ(s.m_col[1].item<double>(), 2 * std::sqrt(80.0));
}

TEST(Decomposition, RotatingEveryRowChangesDirectionOnly) {
  // W' = W0 Q^T turns each row by theta: row norms are unchanged, cos(W'_i, W0_i) = cos(theta).
  const double theta = M_PI / 3;
  torch::Tensor q = matrix({{std::cos(theta), -std::sin(theta)}, {std::sin(theta), std::cos(theta)}});
  torch::Tensor w0 = matrix({{1, 2}, {-3, 0.5}, {0.25, 4}});
  DecompositionStats s = decomposition_stats(w0.matmul(q.t()), w0);
  EXPECT_NEAR(s.dM_row, 0.0, 1e-14);
  EXPECT_NEAR(s.dD_row, 1 - std::cos(theta), 1e-14);  // = 0.5
}

TEST(Decomposition, HandWorkedCaseIncludingAZeroColumn) {
  // W0 = I, W' = [[0,1],[0,2]].
  // rows: (0,1) vs (1,0): |1-1| = 0, cos 0;  (0,2) vs (0,1): |2-1| = 1, cos 1.
  // cols: (0,0) vs (1,0): |0-1| = 1, cos 0 (zero vector);  (1,2) vs (0,1): |sqrt5-1|, cos 2/sqrt5.
  DecompositionStats s = decomposition_stats(matrix({{0, 1}, {0, 2}}), matrix({{1, 0}, {0, 1}}));
  EXPECT_DOUBLE_EQ(s.dM_row, 0.5);
  EXPECT_DOUBLE_EQ(s.dD_row, 0.5);
  EXPECT_DOUBLE_EQ(s.dM_col, std::sqrt(5.0) / 2);
  EXPECT_NEAR(s.dD_col, 1 - 1 / std::sqrt(5.0), 1e-15);
}

TEST(Decomposition, TwoZeroVectorsHaveTheSameDirection) {
  // Row 0 is zero in both (cos 1, not 0: dD would be 0.5), row 1 identical (cos 1 up to rounding).
  DecompositionStats s = decomposition_stats(matrix({{0, 0}, {1, 1}}), matrix({{0, 0}, {1, 1}}));
  EXPECT_NEAR(s.dD_row, 0.0, 1e-15);
  EXPECT_EQ(s.dM_row, 0.0);
}

TEST(Decomposition, Float32InputIsComputedInFloat64LikeAPlainLoop) {
  torch::manual_seed(7);
  const int64_t out = 24, in = 40;
  torch::Tensor w0 = torch::randn({out, in}, torch::kFloat32);
  torch::Tensor w = w0 + 0.3f * torch::randn({out, in}, torch::kFloat32);
  DecompositionStats s = decomposition_stats(w, w0);

  // Reference: the float32 values widened to double, reduced with explicit loops.
  auto a = w.accessor<float, 2>();
  auto b = w0.accessor<float, 2>();
  auto reference = [&](bool rows) {
    int64_t n = rows ? out : in, m = rows ? in : out;
    double dM = 0, dD = 0;
    std::vector<double> norms;
    for (int64_t i = 0; i < n; ++i) {
      double nw = 0, n0 = 0, dot = 0;
      for (int64_t k = 0; k < m; ++k) {
        double x = rows ? a[i][k] : a[k][i], y = rows ? b[i][k] : b[k][i];
        nw += x * x, n0 += y * y, dot += x * y;
      }
      norms.push_back(std::sqrt(nw));
      dM += std::abs(std::sqrt(nw) - std::sqrt(n0));
      dD += 1 - dot / (std::sqrt(nw) * std::sqrt(n0));
    }
    return std::make_tuple(dM / n, dD / n, norms);
  };
  auto [dM_row, dD_row, norms_row] = reference(true);
  auto [dM_col, dD_col, norms_col] = reference(false);
  EXPECT_NEAR(s.dM_row, dM_row, 1e-12);
  EXPECT_NEAR(s.dD_row, dD_row, 1e-12);
  EXPECT_NEAR(s.dM_col, dM_col, 1e-12);
  EXPECT_NEAR(s.dD_col, dD_col, 1e-12);
  ASSERT_EQ(s.m_row.scalar_type(), torch::kFloat64);
  ASSERT_EQ(s.m_row.numel(), out);
  ASSERT_EQ(s.m_col.numel(), in);
  for (int64_t i = 0; i < out; ++i) EXPECT_NEAR(s.m_row[i].item<double>(), norms_row[i], 1e-12);
  for (int64_t j = 0; j < in; ++j) EXPECT_NEAR(s.m_col[j].item<double>(), norms_col[j], 1e-12);
  // Far from zero: a float32 computation would differ from the float64 one by more than 1e-12.
  EXPECT_GT(s.dD_row, 0.01);
}

TEST(Decomposition, RejectsMismatchedShapes) {
  EXPECT_THROW(decomposition_stats(torch::zeros({2, 3}), torch::zeros({3, 2})), std::invalid_argument);
  EXPECT_THROW(decomposition_stats(torch::zeros({6}), torch::zeros({6})), std::invalid_argument);
}

}  // namespace
}  // namespace peftlab
