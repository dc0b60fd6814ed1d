#include "experiments/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace peftlab {

// Expected values worked by hand from Hugging Face's get_{linear,cosine}_schedule_with_warmup definitions.
TEST(Schedule, LinearWarmupThenDecay) {
  EXPECT_DOUBLE_EQ(lr_multiplier("linear", 0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(lr_multiplier("linear", 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier("linear", 10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier("linear", 60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier("linear", 110, 10, 110), 0.0);
}

TEST(Schedule, CosineHalfwayIsHalf) {
  EXPECT_DOUBLE_EQ(lr_multiplier("cosine", 0, 0, 100), 1.0);
  EXPECT_NEAR(lr_multiplier("cosine", 50, 0, 100), 0.5, 1e-15);
  EXPECT_NEAR(lr_multiplier("cosine", 25, 0, 100), 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);
  EXPECT_NEAR(lr_multiplier("cosine", 100, 0, 100), 0.0, 1e-15);
}

TEST(Schedule, ConstantAfterWarmup) {
  EXPECT_DOUBLE_EQ(lr_multiplier("constant", 2, 4, 100), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier("constant", 99, 4, 100), 1.0);
}

}  // namespace peftlab
