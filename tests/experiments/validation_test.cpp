// eval.validation: the seeded, stratified hold-out, and a run that selects on it alone, reading its
// reported split once, at the end (its evaluation rows prove it).
#include "experiments/validation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/errors.h"
#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

// n examples, the first `positives` of every (n / positives)-th one labelled 1, the rest 0.
std::vector<TokenizedExample> labelled(size_t n, size_t positives) {
  std::vector<TokenizedExample> out(n);
  const size_t step = n / positives;
  size_t given = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool positive = i % step == 0 && given < positives;
    out[i].class_label = positive ? 1 : 0;
    given += positive;
  }
  return out;
}

TEST(ValidationHoldOut, CountsAndFractions) {
  EXPECT_EQ(validation_count(120, 1000, "s.yaml"), 120);
  EXPECT_EQ(validation_count(0.1, 1000, "s.yaml"), 100);
  EXPECT_EQ(validation_count(0.0001, 1000, "s.yaml"), 1);  // at least one
  EXPECT_THROW(validation_count(1000, 1000, "s.yaml"), InputError);  // nothing left to train on
  EXPECT_THROW(validation_count(1.5, 1000, "s.yaml"), InputError);
}

TEST(ValidationHoldOut, StratifiedSeededDistinct) {
  const auto examples = labelled(1000, 300);
  ASSERT_EQ(std::count_if(examples.begin(), examples.end(), [](const auto& e) { return e.class_label == 1; }), 300);
  const auto a = hold_out_indices(examples, 100, 7, true);
  ASSERT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 100u);
  // 30 % of the split is class 1, so 30 of the 100 are.
  EXPECT_EQ(std::count_if(a.begin(), a.end(), [&](size_t i) { return examples[i].class_label == 1; }), 30);
  EXPECT_EQ(hold_out_indices(examples, 100, 7, true), a);  // the seed alone decides
  EXPECT_NE(hold_out_indices(examples, 100, 8, true), a);
  EXPECT_EQ(indices_checksum({3, 17, 42}), indices_checksum({3, 17, 42}));
  EXPECT_NE(indices_checksum({3, 17, 42}), indices_checksum({3, 17, 43}));
  // Shares that do not divide evenly: 7 of 10 with 3 of class 1 -> 2.1 and 4.9 -> 2 + 5 by largest remainder.
  const auto small = labelled(10, 3);
  const auto b = hold_out_indices(small, 7, 1, true);
  EXPECT_EQ(std::count_if(b.begin(), b.end(), [&](size_t i) { return small[i].class_label == 1; }), 2);
}

TEST(ValidationRun, SelectsOnValidationAndReadsTheReportedSplitOnceAtTheEnd) {
  testing::TempDir dir;
  testing::write_file(dir / "s.yaml", "name: v\nmodel: {path: " + testing::stories260k_bin().string() +
                                          ", tokenizer: " + testing::stories260k_tokenizer().string() + "}\n" + R"(methods:
  - {name: lora, rank: 4, alpha: 8, targets: [q_proj, v_proj]}
tasks:
  - name: sst2
train: {lr: 5.0e-3, batch_size: 8, max_steps: 6, eval_every: 2, select_best: true}
eval: {max_examples: 32, splits: [dev], validation: 64, validation_seed: 3}
)");
  auto result = testing::run_cli({"--threads", "1", "-q", "run", (dir / "s.yaml").string(), "--out",
                                  (dir / "runs").string(), "--no-table"});
  ASSERT_EQ(result.status, 0) << result.output;
  RunFileReader run((dir / "runs" / "sst2" / "lora-r4" / "seed0" / "run.h5").string());
  EXPECT_EQ(run.read_ints("/eval/validation/step"), (std::vector<int64_t>{2, 4, 6}));
  const auto losses = run.read_doubles("/eval/validation/loss");
  ASSERT_EQ(losses.size(), 3u);
  for (double loss : losses) EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;
  // The reported split: one evaluation, at the end.
  EXPECT_EQ(run.read_ints("/eval/dev/step"), (std::vector<int64_t>{6}));
  EXPECT_TRUE(run.final_metrics("dev").count("accuracy"));
  EXPECT_EQ(run.attribute_int("validation_size"), 64);
  EXPECT_EQ(run.attribute_int("validation_seed"), 3);
  EXPECT_EQ(run.attribute_string("validation_indices_sha256").size(), 64u);
  // The checkpoint chosen is the one of lowest validation loss.
  const auto lowest = std::min_element(losses.begin(), losses.end()) - losses.begin();
  EXPECT_EQ(run.attribute_int("selected_step"), 2 * (lowest + 1));
}

}  // namespace
}  // namespace peftlab
