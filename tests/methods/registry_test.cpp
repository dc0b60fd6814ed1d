// Method registry, option reading, targets and overrides, labels, plans and the trainable share.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/llama2c.h"
#include "methods/adaptation.h"
#include "methods/plan.h"
#include "methods/registry.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

// The error message make_method / plan_adaptation throw for `yaml`, or "" when none.
std::string registry_error_of(const std::string& yaml, const BackboneConfig* config = nullptr) {
  try {
    auto method = make_method_from_yaml(yaml, "spec.yaml");
    if (config) plan_adaptation(*config, *method);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

const BackboneConfig& stories260k_config() {
  static const BackboneConfigPtr config = read_llama2c_config(testing::stories260k_bin());
  return *config;
}

// LLaMA-7B as in its config.json: hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32000, untied.
const BackboneConfig& llama7b_config() {
  static const BackboneConfigPtr config = backbone_config_from_json(
      {{"model_type", "llama"}, {"hidden_size", 4096}, {"intermediate_size", 11008}, {"num_hidden_layers", 32},
       {"num_attention_heads", 32}, {"num_key_value_heads", 32}, {"vocab_size", 32000},
       {"max_position_embeddings", 2048}, {"tie_word_embeddings", false}},
      "llama-7b config");
  return *config;
}

TEST(MethodRegistry, BuiltInsAreRegisteredOnceEach) {
  auto names = method_names();
  std::vector<std::string> expected = {"full", "lora", "dora", "bora", "pissa", "vera"};
  EXPECT_EQ(names, expected);
}

TEST(MethodRegistry, UnknownMethodListsKnownOnesAndSuggests) {
  EXPECT_EQ(registry_error_of("name: lorra\n"),
            "spec.yaml:1: method.name: unknown method 'lorra' (known: bora, dora, full, lora, pissa, vera; did you mean 'lora'?)");
}

TEST(MethodRegistry, UnknownOptionNamesLineAndSuggestion) {
  EXPECT_EQ(registry_error_of("name: dora\nrank: 4\ndetach_norms: false\n"),
            "spec.yaml:3: unknown key 'method.detach_norms' (did you mean 'detach_norm'?)");
  EXPECT_EQ(registry_error_of("name: full\nrank: 4\n"), "spec.yaml:2: unknown key 'method.rank'");
  EXPECT_EQ(registry_error_of("name: lora\nrank: 8\nalpah: 16\n"),
            "spec.yaml:3: unknown key 'method.alpah' (did you mean 'alpha'?)");
}

TEST(MethodRegistry, BadValuesAreInputErrors) {
  EXPECT_EQ(registry_error_of("name: lora\nrank: 0\n"), "spec.yaml:2: method.rank: must be at least 1, got 0");
  EXPECT_EQ(registry_error_of("name: lora\ninit_a: xavier\n"),
            "spec.yaml:2: method.init_a: expected 'kaiming' or 'gaussian', got 'xavier'");
  EXPECT_EQ(registry_error_of("name: bora\norder: rows_first\n"),
            "spec.yaml:2: method.order: expected 'out_first' or 'in_first', got 'rows_first'");
  EXPECT_EQ(registry_error_of("name: lora\ndropout: 1.5\n"), "spec.yaml:2: method.dropout: must be in [0, 1), got 1.5");
  EXPECT_NE(registry_error_of("name: lora\nrank: [1]\n"), "");
  EXPECT_NE(registry_error_of("name: lora\noverrides: [{pattern: 'q_proj', rnak: 2}]\n").find("did you mean 'rank'"),
            std::string::npos);
  EXPECT_NE(registry_error_of("name: lora\ntargets: 'regex:(('\n").find("invalid regular expression"), std::string::npos);
  EXPECT_NE(registry_error_of("{name: lora").find("not valid YAML"), std::string::npos);
}

TEST(MethodTargets, PatternsMatchingNothingAreErrors) {
  const auto& config = stories260k_config();
  EXPECT_EQ(registry_error_of("name: lora\ntargets: [q_proj, q_prj]\n", &config),
            "spec.yaml:2: method.targets: unknown target module 'q_prj' (known: all-linear, down_proj, gate_proj, "
            "k_proj, o_proj, q_proj, up_proj, v_proj; did you mean 'q_proj'?); or use 'regex:<pattern>' over names "
            "like layers.0.self_attn.q_proj");
  EXPECT_EQ(registry_error_of("name: lora\ntargets: 'regex:layers\\.9\\..*'\n", &config),
            "spec.yaml:2: method.targets: 'regex:layers\\.9\\..*' matches no module of the model");
  EXPECT_EQ(registry_error_of("name: lora\noverrides:\n  - {pattern: up_proj, rank: 2}\n", &config),
            "spec.yaml:3: method.overrides: pattern 'up_proj' matches no targeted module");
  // stories260K's k_proj is (32 x 64): rank 33 exceeds min(in, out).
  EXPECT_EQ(registry_error_of("name: dora\nrank: 33\ntargets: k_proj\n", &config),
            "spec.yaml:2: method.rank: rank 33 exceeds min(in, out) = 32 of layers.0.self_attn.k_proj (32 x 64)");
}

TEST(MethodTargets, ShortNamesAllLinearRegexAndOverrides) {
  const auto& config = stories260k_config();  // 5 layers
  auto count = [&](const std::string& yaml) { return plan_adaptation(config, *make_method_from_yaml(yaml)).slots.size(); };
  EXPECT_EQ(count("{name: lora}"), 10u);  // PEFT's LLaMA default: q_proj, v_proj
  EXPECT_EQ(count("{name: lora, targets: all-linear}"), 35u);
  EXPECT_EQ(count("{name: lora, targets: [up_proj, down_proj]}"), 10u);
  EXPECT_EQ(count("{name: lora, targets: 'regex:layers\\.[12]\\.self_attn\\..*'}"), 8u);

  auto plan = plan_adaptation(config, *make_method_from_yaml(
      "{name: lora, rank: 8, alpha: 16, rslora: true, targets: all-linear,"
      " overrides: [{pattern: 'layers\\.0\\.mlp\\..*', rank: 2}, {pattern: mlp\\..*, alpha: 4}, {pattern: k_proj, alpha: 5}]}"));
  for (const auto& s : plan.slots) {
    bool layer0_mlp = s.slot.rfind("layers.0.mlp.", 0) == 0;
    bool mlp = s.slot.find(".mlp.") != std::string::npos;
    EXPECT_EQ(s.rank, layer0_mlp ? 2 : 8) << s.slot;
    double alpha = layer0_mlp ? 16 : mlp ? 4 : s.module == "k_proj" ? 5 : 16;  // the first match wins
    EXPECT_EQ(s.alpha, alpha) << s.slot;
    EXPECT_DOUBLE_EQ(s.scaling, alpha / std::sqrt(double(s.rank))) << s.slot;
  }
}

TEST(MethodTargets, SlotShapesFromConfigMatchTheModel) {
  auto model = load_llama2c(testing::stories260k_bin());
  auto shapes = model->config().slot_shapes();
  auto slots = model->slots();
  ASSERT_EQ(shapes.size(), slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    EXPECT_EQ(shapes[i].name, slots[i]->slot_name());
    EXPECT_EQ(shapes[i].has_bias, slots[i]->has_bias());
    EXPECT_EQ(shapes[i].in_features, slots[i]->in_features());
    EXPECT_EQ(shapes[i].out_features, slots[i]->out_features());
  }
}

TEST(MethodLabels, DefaultAndCustom) {
  auto label = [](const std::string& yaml) { return make_method_from_yaml(yaml)->label(); };
  EXPECT_EQ(label("{name: full}"), "full");
  EXPECT_EQ(label("{name: lora, rank: 8}"), "lora-r8");
  EXPECT_EQ(label("{name: lora, rank: 16, rslora: true, init_a: gaussian}"), "lora-r16-rslora-gaussian");
  EXPECT_EQ(label("{name: dora, rank: 8}"), "dora-r8");
  EXPECT_EQ(label("{name: dora, rank: 0}"), "dora-r0");
  EXPECT_EQ(label("{name: dora, rank: 4, detach_norm: false}"), "dora-r4-exactnorm");
  EXPECT_EQ(label("{name: bora, rank: 8, order: in_first}"), "bora-r8-in_first");
  EXPECT_EQ(label("{name: bora, rank: 8, label: mine}"), "mine");
  EXPECT_EQ(label("{name: pissa}"), "pissa-r8");
  EXPECT_EQ(label("{name: vera, rank: 64}"), "vera-r64");
  EXPECT_EQ(label("{name: vera, rank: 64, d_initial: 0.5}"), "vera-r64-d0.5");
}

TEST(MethodOptions, JsonRoundTripGivesTheSameMethod) {
  for (const std::string yaml :
       {"{name: full}", "{name: lora, rank: 4, rslora: true, targets: all-linear, overrides: [{pattern: q_proj, rank: 2}]}",
        "{name: dora, rank: 0, detach_norm: false}", "{name: bora, rank: 3, order: in_first, init_a: gaussian}",
        "{name: pissa, rank: 4, alpha: 4, rslora: true}", "{name: vera, rank: 16, d_initial: 0.2, dropout: 0.1}"}) {
    auto method = make_method_from_yaml(yaml);
    auto again = make_method_from_yaml(method->to_json().dump());
    EXPECT_EQ(again->to_json(), method->to_json()) << yaml;
    EXPECT_EQ(again->label(), method->label());
  }
}

TEST(TrainableShare, Llama7bMatchesDoraPaperTable1) {
  const auto& config = llama7b_config();
  EXPECT_EQ(config.parameter_count(), 6738415616);  // LLaMA-7B's published count
  const std::string targets = "targets: [q_proj, k_proj, v_proj, up_proj, down_proj]";
  auto lora = plan_adaptation(config, *make_method_from_yaml("{name: lora, rank: 32, alpha: 64, " + targets + "}"));
  auto dora = plan_adaptation(config, *make_method_from_yaml("{name: dora, rank: 32, alpha: 64, " + targets + "}"));
  // Per layer r(in+out): q, k, v 32*(4096+4096) each; up, down 32*(4096+11008) each; 32 layers.
  const int64_t lora_expected = 32 * (3 * 32 * (4096 + 4096) + 2 * 32 * (4096 + 11008));
  EXPECT_EQ(lora.trainable_params, 56098816);
  EXPECT_EQ(lora.trainable_params, lora_expected);
  EXPECT_EQ(dora.trainable_params, lora_expected + 32 * (3 * 4096 + 11008 + 4096));  // + out per module
  EXPECT_EQ(fmt::format("{:.2f}%", 100 * lora.trainable_share()), "0.83%");
  EXPECT_EQ(fmt::format("{:.2f}%", 100 * dora.trainable_share()), "0.84%");
  auto full = plan_adaptation(config, *make_method_from_yaml("{name: full}"));
  EXPECT_DOUBLE_EQ(full.trainable_share(), 1.0);
}

TEST(PlanText, Stories260kCounts) {
  const auto& config = stories260k_config();
  auto method = make_method_from_yaml("{name: dora, rank: 4, alpha: 8, targets: [q_proj, k_proj, down_proj]}");
  auto text = describe_plan(config, *method);
  // q (64x64): 4*128+64 = 576; k (32x64): 4*96+32 = 416; down (64x172): 4*236+64 = 1008; 5 layers each.
  EXPECT_NE(text.find("q_proj     x5    (64 x 64)  rank 4  alpha 8  scaling 2  trainable 576 each"), std::string::npos) << text;
  EXPECT_NE(text.find("k_proj     x5    (32 x 64)  rank 4  alpha 8  scaling 2  trainable 416 each"), std::string::npos) << text;
  EXPECT_NE(text.find("down_proj  x5    (64 x 172)  rank 4  alpha 8  scaling 2  trainable 1,008 each"), std::string::npos) << text;
  const int64_t trainable = 5 * (576 + 416 + 1008);
  EXPECT_NE(text.find(fmt::format("trainable parameters: {} of {}", with_thousands(trainable),
                                  with_thousands(config.parameter_count() + trainable))),
            std::string::npos)
      << text;
  EXPECT_EQ(with_thousands(6738415616), "6,738,415,616");
  EXPECT_EQ(with_thousands(12), "12");
}

TEST(ParameterGroups, MagnitudesAreKeptOutOfWeightDecay) {
  auto model = load_llama2c(testing::stories260k_bin());
  apply_method(*model, *make_method_from_yaml("{name: bora, rank: 2, targets: q_proj}"), 1);
  auto groups = trainable_parameter_groups(*model);
  EXPECT_EQ(groups.decay.size(), 10u);     // lora_A, lora_B of 5 q_proj
  EXPECT_EQ(groups.no_decay.size(), 10u);  // magnitude, magnitude_in of 5 q_proj
  for (const auto& n : groups.no_decay_names) EXPECT_TRUE(is_magnitude_parameter(n)) << n;
  for (const auto& n : groups.decay_names) EXPECT_NE(n.find("lora_"), std::string::npos) << n;
}

TEST(ApplyMethod, SameSeedSameAdapterDifferentSeedDifferent) {
  auto method = make_method_from_yaml("{name: lora, rank: 2}");
  auto first_a = [&](uint64_t seed) {
    auto model = load_llama2c(testing::stories260k_bin());
    apply_method(*model, *method, seed);
    return model->slots()[0]->adapter()->named_parameters()["lora_A"].clone();
  };
  EXPECT_TRUE(torch::equal(first_a(5), first_a(5)));
  EXPECT_FALSE(torch::equal(first_a(5), first_a(6)));
  // Kaiming-uniform(a=sqrt(5)) on (r, in=64): U(-1/8, 1/8).
  EXPECT_LE(first_a(5).abs().max().item<double>(), 0.125);
}

}  // namespace
}  // namespace peftlab

namespace peftlab {
namespace {

TEST(PlanVerb, PrintsThePlanAndRejectsBadMethods) {
  auto ok = testing::run_cli({"plan", "--model", testing::stories260k_bin().string(), "--method",
                              "{name: lora, rank: 4, targets: all-linear}"});
  EXPECT_EQ(ok.status, 0) << ok.output;
  // 5 layers x r(in+out): q 4*128, k 4*96, v 4*96, o 4*128, gate 4*236, up 4*236, down 4*236.
  const int64_t trainable = 5 * 4 * (128 + 96 + 96 + 128 + 3 * 236);
  EXPECT_NE(ok.output.find("trainable parameters: " + with_thousands(trainable)), std::string::npos) << ok.output;
  auto bad = testing::run_cli({"plan", "--model", testing::stories260k_bin().string(), "--method", "{name: lorra}"});
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("error: --method:1: method.name: unknown method 'lorra'"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace peftlab
