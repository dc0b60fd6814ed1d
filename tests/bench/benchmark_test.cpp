// The bench's FLOP count against the textbook closed forms, and `peftlab bench` end to end on stories260K.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/benchmark.h"
#include "core/errors.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

// A small llama shape, and its numbers written out: dim 64, 4 heads of 16 with 2 kv heads (kv width 32),
// MLP 176, 3 layers, vocabulary 500.
struct Shape {
  double dim = 64, kv = 32, hidden = 176, n_layers = 3, vocab_size = 500;
};

BackboneConfigPtr small_config() {
  return backbone_config_from_json({{"model_type", "llama"}, {"hidden_size", 64}, {"intermediate_size", 176},
                                    {"num_hidden_layers", 3}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                                    {"vocab_size", 500}, {"max_position_embeddings", 128}},
                                   "test config");
}

// Parameters that take part in matmuls: every linear of every layer, and the output projection.
double matmul_parameters(const Shape& c) {
  const double d = c.dim, kv = c.kv, h = c.hidden;
  return c.n_layers * (2 * d * d + 2 * d * kv + 3 * d * h) + d * c.vocab_size;
}

TEST(BenchFlops, FullFineTuningIsSixTimesTokensTimesParametersPlusAttention) {
  // Kaplan et al.'s rule: a training step costs 6 N P (forward 2NP, backward 4NP) for the matmuls; the
  // attention products add 4 N T d per layer forward and twice that backward.
  const auto config = small_config();
  const Shape c;
  const int64_t batch = 3, T = 40;
  const double N = batch * T;
  const double expected = 6 * N * matmul_parameters(c) + 12 * N * T * c.dim * c.n_layers;
  EXPECT_NEAR(training_step_flops(*config, *bench_method("full", 8), batch, T).total(), expected, 1e-9 * expected);
}

TEST(BenchFlops, LoraIsFourTimesTokensTimesParametersPlusTheAdapterTerms) {
  const auto config = small_config();
  const Shape c;
  const int64_t batch = 2, T = 32, r = 4;
  const double N = batch * T, d = c.dim, kv = c.kv, h = c.hidden;
  // No weight gradients for frozen matrices; no input gradient for the first layer's q, k, v (they read
  // the frozen embedding). Each adapter: 2 N r (in + out) forward, twice that backward.
  const double frozen = 4 * N * matmul_parameters(c) - 2 * N * (d * d + 2 * d * kv) + 12 * N * T * d * c.n_layers;
  const double adapter_dims = c.n_layers * ((d + d) * 2 + (d + kv) * 2 + (d + h) * 2 + (h + d));
  const double lora = frozen + 6 * N * r * adapter_dims;
  EXPECT_NEAR(training_step_flops(*config, *bench_method("lora", r), batch, T).total(), lora, 1e-9 * lora);
  // DoRA adds its norm's cross term W0 A^T once per step, 2 r (in x out) per adapted matrix; BoRA two norms.
  const double norm = 2.0 * r * c.n_layers * (2 * d * d + 2 * d * kv + 3 * d * h);
  EXPECT_NEAR(training_step_flops(*config, *bench_method("dora", r), batch, T).total(), lora + norm, 1e-9 * lora);
  EXPECT_NEAR(training_step_flops(*config, *bench_method("bora", r), batch, T).total(), lora + 2 * norm, 1e-9 * lora);
}

TEST(BenchCases, LabelsRoundTripAndBadOnesAreInputErrors) {
  BenchCase defaults;
  auto c = bench_case_from_label("lora+bf16+ckpt", defaults);
  EXPECT_EQ(c.method, "lora");
  EXPECT_EQ(c.precision, "bf16");
  EXPECT_TRUE(c.activation_checkpointing);
  EXPECT_EQ(c.label(), "lora+bf16+ckpt");
  EXPECT_EQ(BenchCase::from_json(c.to_json()).label(), c.label());
  EXPECT_THROW(bench_case_from_label("lorax", defaults), InputError);
  EXPECT_THROW(bench_case_from_label("dora+fp8", defaults), InputError);
  EXPECT_THROW(bench_shape_config("7B"), InputError);
  EXPECT_EQ(bench_shape_config("110M")->hidden_size, 768);
}

TEST(BenchRounds, MediansOfTimesLargestPeaksAndOnlyCasesAlike) {
  auto round = [](double step, double step_min, double step_max, int64_t peak, bool identical) {
    BenchMeasurement m;
    m.step_seconds = step, m.step_seconds_min = step_min, m.step_seconds_max = step_max;
    m.eval_plain_seconds = step / 10, m.eval_merged_seconds = step / 5;
    m.generate_batched_seconds = step * 2, m.generate_single_seconds = step * 3;
    m.peak_rss_bytes = peak, m.rss_after_setup_bytes = peak / 2, m.generate_identical = identical;
    return m;
  };
  const auto m = combine_rounds({round(3.0, 2.5, 3.5, 100, true), round(1.0, 0.9, 1.2, 300, true),
                                 round(2.0, 1.5, 4.0, 200, false)});
  EXPECT_DOUBLE_EQ(m.step_seconds, 2.0);
  EXPECT_DOUBLE_EQ(m.step_seconds_min, 0.9);
  EXPECT_DOUBLE_EQ(m.step_seconds_max, 4.0);
  EXPECT_DOUBLE_EQ(m.eval_plain_seconds, 0.2);
  EXPECT_DOUBLE_EQ(m.eval_merged_seconds, 0.4);
  EXPECT_DOUBLE_EQ(m.generate_batched_seconds, 4.0);
  EXPECT_DOUBLE_EQ(m.generate_single_seconds, 6.0);
  EXPECT_EQ(m.peak_rss_bytes, 300);
  EXPECT_EQ(m.rss_after_setup_bytes, 150);
  EXPECT_FALSE(m.generate_identical);
  EXPECT_EQ(m.rounds, 3);
  EXPECT_DOUBLE_EQ(combine_rounds({round(1.0, 1, 1, 1, true), round(2.0, 1, 2, 1, true)}).step_seconds, 1.5);
  EXPECT_THROW(combine_rounds({}), std::invalid_argument);
  auto other = round(1.0, 1, 1, 1, true);
  other.bench_case.method = "dora";
  EXPECT_THROW(combine_rounds({round(1.0, 1, 1, 1, true), other}), std::invalid_argument);
}

TEST(BenchCli, MeasuresEveryCaseInItsOwnProcessOnStories260K) {
  testing::TempDir dir;
  const auto json_path = dir / "bench.json", markdown_path = dir / "bench.md";
  auto result = testing::run_cli({"--threads", "1", "bench", "--shape", "260K", "--methods", "lora,dora+ckpt,lora+logits",
                                  "--steps", "2", "--warmup", "1", "--rounds", "2", "--no-reference", "--json", json_path.string(),
                                  "--markdown", markdown_path.string()});
  ASSERT_EQ(result.status, 0) << result.output;
  const auto raw = nlohmann::json::parse(testing::read_file(json_path));
  EXPECT_GT(raw.at("matmul_peak_gflops").get<double>(), 0.1);
  const auto& cases = raw.at("shapes").at(0).at("cases");
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    const auto m = BenchMeasurement::from_json(c);
    EXPECT_GT(m.step_seconds, 0);
    EXPECT_LE(m.step_seconds_min, m.step_seconds);
    EXPECT_GT(m.flops_per_step, 0);
    EXPECT_GT(m.eval_merged_seconds, 0);
    // The child's own peak (wait4) is at least what it held after setup.
    EXPECT_GE(m.peak_rss_bytes, m.rss_after_setup_bytes);
    EXPECT_GT(m.rss_after_setup_bytes, 0);
    EXPECT_TRUE(std::isfinite(m.final_loss));
    EXPECT_EQ(m.rounds, 2);
  }
  EXPECT_EQ(BenchMeasurement::from_json(cases[1]).bench_case.label(), "dora+ckpt");
  EXPECT_FALSE(BenchMeasurement::from_json(cases[2]).bench_case.tiled_loss);
  for (const auto& c : cases) {  // greedy generation (--generate defaults to 16 new tokens), batched and alone
    const auto m = BenchMeasurement::from_json(c);
    EXPECT_GT(m.generate_batched_seconds, 0);
    EXPECT_GT(m.generate_single_seconds, 0);
    EXPECT_TRUE(m.generate_identical) << m.bench_case.label();
  }
  const std::string table = testing::read_file(markdown_path);
  EXPECT_NE(table.find("### 260K"), std::string::npos);
  EXPECT_NE(table.find("| dora+ckpt |"), std::string::npos);
  EXPECT_NE(table.find("greedy generation, 8 prompts"), std::string::npos) << table;
  EXPECT_EQ(table.find("### Targets"), std::string::npos);  // targets live in docs/performance.md
}

}  // namespace
}  // namespace peftlab
