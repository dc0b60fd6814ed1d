#include "tasks/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/errors.h"

namespace peftlab {
namespace {

// Binary case worked by hand: TP=5, TN=3, FP=2, FN=2 (12 examples).
const std::vector<double> kPredicted = {1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0};
const std::vector<double> kTrue = {1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1};

TEST(Metrics, AccuracyF1MatthewsOnAHandWorkedBinaryCase) {
  EXPECT_DOUBLE_EQ(accuracy(kPredicted, kTrue), 8.0 / 12.0);
  EXPECT_DOUBLE_EQ(f1_score(kPredicted, kTrue, 1), 2.0 * 5 / (2.0 * 5 + 2 + 2));  // 10/14
  // (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (15 - 4) / sqrt(7*7*5*5) = 11/35
  EXPECT_NEAR(matthews_corrcoef(kPredicted, kTrue), 11.0 / 35.0, 1e-15);
  // F1 of class 0: TP0=3, FP0=2, FN0=2 -> 6/10; macro = (10/14 + 6/10) / 2.
  EXPECT_NEAR(macro_f1(kPredicted, kTrue), (10.0 / 14.0 + 0.6) / 2, 1e-15);
}

TEST(Metrics, MatthewsMulticlassMatchesNumpyReference) {
  // Reference: numpy 1.24, MCC as the correlation of the one-hot matrices (Gorodkin's definition):
  //   X = eye(3)[p]; Y = eye(3)[t]; cov(A,B) = ((A-A.mean(0))*(B-B.mean(0))).sum()
  //   cov(X,Y)/sqrt(cov(X,X)*cov(Y,Y)) = 0.5454545454545453
  std::vector<double> p = {0, 1, 2, 2, 1, 0, 0, 2, 1, 1}, t = {0, 1, 2, 1, 1, 0, 2, 2, 0, 1};
  EXPECT_NEAR(matthews_corrcoef(p, t), 0.5454545454545453, 1e-12);
}

TEST(Metrics, MatthewsIsZeroForAConstantPrediction) {
  // Undefined (0/0); scikit-learn returns 0, and so do we (CoLA with a majority-class model).
  EXPECT_EQ(matthews_corrcoef({1, 1, 1, 1}, {0, 1, 1, 0}), 0.0);
  EXPECT_EQ(matthews_corrcoef({1, 0, 1, 0}, {1, 0, 1, 0}), 1.0);
  EXPECT_EQ(matthews_corrcoef({0, 1, 0, 1}, {1, 0, 1, 0}), -1.0);
}

TEST(Metrics, F1WithoutTruePositivesIsZero) { EXPECT_EQ(f1_score({0, 0}, {1, 0}), 0.0); }

TEST(Metrics, PearsonAndSpearmanMatchNumpyReference) {
  // Reference values: numpy 1.24, np.corrcoef(x, y)[0, 1] for Pearson, and np.corrcoef of average ranks
  // (rank of v = #(a < v) + (#(a == v) + 1) / 2) for Spearman. x has a three-way tie at 3.8.
  std::vector<double> x = {5.0, 3.8, 3.8, 2.6, 4.25, 0.5, 1.0, 3.8, 2.0, 4.6};
  std::vector<double> y = {4.6, 4.0, 3.1, 2.9, 4.4, 1.2, 0.7, 3.5, 2.0, 4.8};
  EXPECT_NEAR(pearson(x, y), 0.964442801646289, 1e-12);
  EXPECT_NEAR(spearman(x, y), 0.9632626970495626, 1e-12);
  EXPECT_EQ(average_ranks(x), (std::vector<double>{10, 6, 6, 4, 8, 1, 2, 6, 3, 9}));
}

TEST(Metrics, ClosedFormsOfCorrelations) {
  std::vector<double> x = {1, 2, 3, 4, 5};
  std::vector<double> affine = {-1, 1, 3, 5, 7};  // 2x - 3: Pearson exactly 1
  std::vector<double> monotone = {1, 8, 27, 64, 125};  // x^3: Spearman 1, Pearson < 1
  EXPECT_NEAR(pearson(x, affine), 1.0, 1e-15);
  EXPECT_NEAR(spearman(x, monotone), 1.0, 1e-15);
  EXPECT_LT(pearson(x, monotone), 0.99);
  EXPECT_TRUE(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
}

TEST(Metrics, MseNoMatchAndLanguageModelClosedForms) {
  EXPECT_DOUBLE_EQ(mean_squared_error({1, 2, 3}, {1, 4, 0}), (0 + 4 + 9) / 3.0);
  EXPECT_DOUBLE_EQ(no_match_rate({-1, 0, 2, -1}, {0, 0, 2, 1}), 0.5);
  // A uniform model over V tokens: NLL per token ln V, perplexity V.
  EXPECT_NEAR(perplexity(100 * std::log(512.0), 100), 512.0, 1e-9);
  // 8 bits per byte when each byte costs ln 256 nats.
  EXPECT_NEAR(bits_per_byte(40 * std::log(256.0), 40), 8.0, 1e-12);
}

TEST(Metrics, SizeMismatchThrows) { EXPECT_THROW(accuracy({1, 0}, {1}), std::invalid_argument); }

TEST(Metrics, UnknownNameSuggests) {
  EXPECT_EQ(metric_by_name("spearman").name, "spearman");
  EXPECT_FALSE(metric_by_name("mse").higher_is_better);
  try {
    metric_by_name("acuracy", "spec.yaml", 7);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 7);
    EXPECT_NE(e.problem().find("did you mean 'accuracy'"), std::string::npos);
  }
}

}  // namespace
}  // namespace peftlab
