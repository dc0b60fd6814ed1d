// One conformance suite for every registered method (and the variants below): identity at init, merged ==
// unmerged after perturbation, gradients only where they belong, parameter counts by docs/methods.md's formulas,
// BoRA's norm invariant, a float64 reference built from the formulas (the method's oracle in
// method_test_support.h), and finite-difference gradients when the norms are not detached. A new method gets
// all of this by being registered and giving its oracle, on a decoder (llama: with and without biases) and on
// the encoder families' biased slots (roberta, bert, deberta-v2).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <set>

#include "core/llama2c.h"
#include "methods/adaptation.h"
#include "methods/registry.h"
#include "tests/methods/method_test_support.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::max_relative_difference;

struct MethodCase {
  std::string id;       // gtest-safe name
  std::string yaml;     // the method mapping
  bool biased = false;  // every slot has a bias (a llama config with attention_bias and mlp_bias)
  std::string family{};  // "": llama (stories260K or the biased config); "roberta", "bert": a tiny encoder
};

// Variants beyond each registered method's defaults.
const std::vector<MethodCase>& variant_table() {
  static const std::vector<MethodCase> variants = {
      {"lora_all_linear", "{name: lora, rank: 4, alpha: 8, targets: all-linear}"},
      {"lora_rslora", "{name: lora, rank: 4, alpha: 8, rslora: true, targets: all-linear}"},
      {"lora_gaussian", "{name: lora, rank: 4, init_a: gaussian, targets: [q_proj, down_proj]}"},
      {"dora", "{name: dora, rank: 4, alpha: 8, targets: all-linear}"},
      {"dora_exact_norm", "{name: dora, rank: 4, alpha: 8, detach_norm: false, targets: all-linear}"},
      {"dora_r0", "{name: dora, rank: 0, targets: all-linear}"},
      {"bora_out_first", "{name: bora, rank: 4, alpha: 8, targets: all-linear}"},
      {"bora_in_first", "{name: bora, rank: 4, alpha: 8, order: in_first, targets: all-linear}"},
      {"bora_exact_norms", "{name: bora, rank: 4, alpha: 8, detach_norms: false, targets: all-linear}"},
      {"bora_in_first_exact_norms",
       "{name: bora, rank: 4, alpha: 8, order: in_first, detach_norms: false, targets: all-linear}"},
      {"bora_r0", "{name: bora, rank: 0, targets: all-linear}"},
      {"lora_overrides",
       "{name: lora, rank: 4, targets: all-linear, overrides: [{pattern: 'layers\\.0\\..*', rank: 2, alpha: 3}]}"},
  };
  return variants;
}

// Every case twice: on stories260K's slots (no bias) and on a model whose every slot has a bias.
std::vector<MethodCase> all_cases() {
  std::vector<MethodCase> cases;
  for (const auto& name : method_names()) cases.push_back({name + "_defaults", "{name: " + name + "}"});
  for (const auto& v : variant_table()) cases.push_back(v);
  const size_t unbiased = cases.size();
  for (size_t i = 0; i < unbiased; ++i) cases.push_back({cases[i].id + "_biased", cases[i].yaml, true});
  // The encoders: every method's defaults (PEFT's query, value) on RoBERTa, and variants over their other slots.
  for (const auto& name : method_names()) cases.push_back({name + "_defaults_roberta", "{name: " + name + "}", true, "roberta"});
  cases.push_back({"lora_all_linear_roberta", "{name: lora, rank: 4, alpha: 8, targets: all-linear}", true, "roberta"});
  cases.push_back({"dora_dense_bert", "{name: dora, rank: 4, alpha: 8, targets: [dense]}", true, "bert"});
  cases.push_back({"bora_all_linear_bert", "{name: bora, rank: 4, alpha: 8, order: in_first, detach_norms: false, "
                                           "targets: all-linear}", true, "bert"});
  cases.push_back({"full_defaults_bert", "{name: full}", true, "bert"});
  cases.push_back({"lora_defaults_deberta", "{name: lora}", true, "deberta-v2"});
  cases.push_back({"dora_all_linear_deberta", "{name: dora, rank: 4, alpha: 8, detach_norm: false, targets: all-linear}",
                   true, "deberta-v2"});
  return cases;
}

// A tiny randomly initialised encoder of the family (bert, roberta, deberta-v2) (dropout off, so that forward passes compare exactly).
Backbone encoder_model(const std::string& family) {
  nlohmann::json config = {{"model_type", family}, {"hidden_size", 64}, {"intermediate_size", 96},
                           {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"vocab_size", 512},
                           {"max_position_embeddings", 40}, {"hidden_dropout_prob", 0.0},
                           {"attention_probs_dropout_prob", 0.0}, {"type_vocab_size", family == "bert" ? 2 : 1}};
  if (family == "deberta-v2")  // DeBERTa-v3's layout: the query and key slots also project the relative embeddings
    config.update({{"type_vocab_size", 0}, {"relative_attention", true}, {"position_buckets", 8},
                   {"max_relative_positions", 16}, {"share_att_key", true}, {"pos_att_type", "p2c|c2p"},
                   {"norm_rel_ebd", "layer_norm"}, {"position_biased_input", false}});
  return backbone_config_from_json(config, "encoder test config")->build();
}

// stories260K's shape (2 layers), randomly initialised, with a bias on every slot.
Backbone biased_model() {
  return backbone_config_from_json({{"model_type", "llama"}, {"hidden_size", 64}, {"intermediate_size", 172},
                                    {"num_hidden_layers", 2}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                                    {"vocab_size", 512}, {"max_position_embeddings", 64}, {"attention_bias", true},
                                    {"mlp_bias", true}, {"tie_word_embeddings", true}},
                                   "biased test config")
      ->build();
}

bool detaches_norms(const nlohmann::json& options) {
  if (options.contains("detach_norm")) return options["detach_norm"].get<bool>();
  if (options.contains("detach_norms")) return options["detach_norms"].get<bool>();
  return false;  // lora, full: nothing to detach
}

class MethodConformance : public ::testing::TestWithParam<MethodCase> {
 protected:
  void SetUp() override {
    torch::manual_seed(1234);
    method = make_method_from_yaml(GetParam().yaml, "conformance.yaml");
    model = !GetParam().family.empty() ? encoder_model(GetParam().family)
            : GetParam().biased        ? biased_model()
                                       : load_llama2c(testing::stories260k_bin());
    for (const auto& slot : model->slots()) ASSERT_EQ(slot->has_bias(), GetParam().biased) << slot->slot_name();
    tokens = torch::randint(0, model->config().vocab_size, {2, 9}, torch::kInt64);
  }
  torch::Tensor logits() {
    torch::NoGradGuard no_grad;
    // Encoders have no LM logits: their hidden states are what the adapters change.
    return model->config().is_decoder() ? model->forward(tokens) : model->hidden_states(tokens);
  }
  std::vector<std::pair<std::string, torch::Tensor>> adapter_parameters() {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& item : model->named_parameters())
      if (item.key().find(".adapter.") != std::string::npos) out.emplace_back(item.key(), item.value());
    return out;
  }
  std::unique_ptr<Method> method;
  Backbone model;
  torch::Tensor tokens;
};

TEST_P(MethodConformance, IdentityAtInit) {
  auto base = logits();
  auto plan = apply_method(*model, *method, 7);
  // What was applied: adapters on exactly the planned slots (none for full fine-tuning, whose every backbone
  // weight trains instead), and the model computes what it computed before.
  std::set<std::string> planned;
  for (const auto& s : plan.slots) planned.insert(s.slot);
  EXPECT_EQ(planned.empty(), method->trains_base_weights());
  for (const auto& slot : model->slots()) EXPECT_EQ(slot->has_adapter(), planned.count(slot->slot_name()) == 1);
  for (const auto& item : model->named_parameters()) {
    if (item.key().find(".adapter.") == std::string::npos) {
      EXPECT_EQ(item.value().requires_grad(), method->trains_base_weights()) << item.key();
    }
  }
  EXPECT_LE(max_relative_difference(logits(), base), 1e-6);
}

TEST_P(MethodConformance, MergedEqualsUnmergedAfterPerturbation) {
  auto base = logits();
  apply_method(*model, *method, 7);
  testing::perturb_adapter_parameters(*model);
  auto unmerged = logits();
  if (!method->trains_base_weights()) {
    EXPECT_GT(max_relative_difference(unmerged, base), 1e-3) << "perturbation had no effect";
  }
  merge_all(*model);
  for (const auto& slot : model->slots()) EXPECT_EQ(slot->merged(), slot->has_adapter());
  EXPECT_LE(max_relative_difference(logits(), unmerged), 1e-5);
  unmerge_all(*model);
  EXPECT_LE(max_relative_difference(logits(), unmerged), 1e-6);
}

TEST_P(MethodConformance, OnlyAdapterAndHeadParametersGetGradients) {
  apply_method(*model, *method, 7);
  testing::perturb_adapter_parameters(*model);  // B != 0, so A's gradient is not zero either
  SequenceHead head = model->make_sequence_head(3);
  auto hidden = model->hidden_states(tokens);
  auto scores = head->forward(hidden, torch::ones_like(tokens));
  torch::nn::functional::cross_entropy(scores, torch::tensor({0, 2}, torch::kInt64)).backward();
  for (const auto& p : head->parameters()) EXPECT_TRUE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  int64_t with_grad = 0;
  for (const auto& item : model->named_parameters()) {
    bool is_adapter = item.key().find(".adapter.") != std::string::npos;
    bool should_train = is_adapter || method->trains_base_weights();
    const auto& grad = item.value().grad();
    EXPECT_EQ(item.value().requires_grad(), should_train) << item.key();
    EXPECT_EQ(grad.defined(), should_train) << item.key();
    if (should_train && grad.defined()) {
      // lm_head is unused by a score head; everything else on the path gets a non-zero gradient.
      if (item.key().rfind("lm_head", 0) != 0 && item.key().rfind("embed_tokens", 0) != 0) {
        EXPECT_GT(grad.abs().sum().item<double>(), 0) << item.key();
      }
      ++with_grad;
    }
  }
  EXPECT_GT(with_grad, 0);
}

TEST_P(MethodConformance, ParameterCountsFollowDesignFormulas) {
  auto plan = apply_method(*model, *method, 7);
  const auto& config = model->config();
  int64_t trainable = 0;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable += p.numel();
  EXPECT_EQ(trainable, plan.trainable_params);
  if (method->trains_base_weights()) {
    EXPECT_EQ(trainable, config.parameter_count());
    EXPECT_EQ(plan.added_params, 0);
    return;
  }
  ASSERT_FALSE(plan.slots.empty());
  for (const auto& s : plan.slots) {
    auto slot = model->slot(s.slot);
    ASSERT_TRUE(slot->has_adapter()) << s.slot;
    int64_t numel = 0;
    for (const auto& p : slot->adapter()->parameters()) numel += p.numel();
    EXPECT_EQ(numel, testing::method_oracle(method->name())
                         .parameter_count(slot->in_features(), slot->out_features(), s.rank))
        << s.slot;
    EXPECT_EQ(numel, s.trainable_params);
  }
  for (const auto& slot : model->slots()) {
    if (!slot->has_adapter()) {
      EXPECT_FALSE(slot->weight.requires_grad());
    }
  }
}

class BoraConformance : public MethodConformance {};

TEST_P(BoraConformance, NormInvariant) {
  auto options = method->to_json();
  ASSERT_EQ(options["name"], "bora");
  apply_method(*model, *method, 7);
  testing::perturb_adapter_parameters(*model);
  bool out_first = options["order"] == "out_first";
  for (auto slot : model->slots()) {
    if (!slot->has_adapter()) continue;
    torch::NoGradGuard no_grad;
    auto w = slot->effective_weight();
    auto params = slot->adapter()->named_parameters();
    if (out_first) EXPECT_LE(max_relative_difference(w.norm(2, {0}), params["magnitude_in"]), 1e-5) << slot->slot_name();
    else EXPECT_LE(max_relative_difference(w.norm(2, {1}), params["magnitude"]), 1e-5) << slot->slot_name();
  }
}

// A standalone float64 slot, adapted like the model's first planned slot, perturbed.
struct Float64Slot {
  AdaptableLinear layer{nullptr};
  SlotPlan plan;
};
Float64Slot make_float64_slot(const Method& method, const BackboneConfig& config, bool biased) {
  auto plan = plan_adaptation(config, method);
  Float64Slot s;
  s.plan = plan.slots.at(0);
  s.layer = AdaptableLinear(s.plan.slot, s.plan.in_features, s.plan.out_features, biased);
  s.layer->to(torch::kFloat64);
  s.layer->weight.set_requires_grad(false);
  if (biased) s.layer->bias.set_requires_grad(false);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  auto shared = method.make_shared_state({s.plan}, s.layer->weight.options(), generator);
  s.layer->attach(method.make_adapter(s.plan, s.layer->weight, generator, shared));
  testing::perturb_adapter_parameters(*s.layer);
  return s;
}

TEST_P(MethodConformance, MatchesFloat64ReferenceBuiltFromTheFormula) {
  if (method->trains_base_weights()) GTEST_SKIP() << "no adapter";
  auto slot = make_float64_slot(*method, model->config(), GetParam().biased);
  const auto& oracle = testing::method_oracle(method->name());
  ASSERT_TRUE(oracle.merged_weight) << method->name();
  auto expected_w = oracle.merged_weight(slot.layer->weight, testing::adapter_tensors(*slot.layer->adapter()),
                                         slot.plan.scaling, method->to_json());
  EXPECT_GT(max_relative_difference(expected_w, slot.layer->weight), 1e-3) << "reference equals W0: test is void";
  auto x = torch::randn({3, 4, slot.plan.in_features}, torch::kFloat64);
  torch::NoGradGuard no_grad;
  // PEFT's semantics: y = x W'^T + b, the bias added unscaled after the weight path (DoRA/BoRA rescale W' only).
  auto expected_y = torch::matmul(x, expected_w.t());
  const auto bias = slot.layer->has_bias() ? slot.layer->bias.clone() : torch::Tensor();
  if (bias.defined()) {
    EXPECT_GT(bias.abs().max().item<double>(), 0.0);
    expected_y = expected_y + bias;
  }
  EXPECT_LE(max_relative_difference(slot.layer->forward(x), expected_y), 1e-12);
  EXPECT_LE(max_relative_difference(slot.layer->effective_weight(), expected_w), 1e-12);
  // Merging folds W' into the weight and leaves the bias as it is; unmerging restores W0.
  const auto w0 = slot.layer->weight.clone();
  slot.layer->merge();
  EXPECT_LE(max_relative_difference(slot.layer->forward(x), expected_y), 1e-12);
  if (bias.defined()) {
    EXPECT_TRUE(torch::equal(slot.layer->bias, bias));
  }
  slot.layer->unmerge();
  EXPECT_TRUE(torch::equal(slot.layer->weight, w0));
  if (bias.defined()) {
    EXPECT_TRUE(torch::equal(slot.layer->bias, bias));
  }
}

// The cases whose adapter gradients are the true gradients of W': an adapter (not full fine-tuning) whose norms
// are not detached (with detached norms, section 4.3 of the DoRA paper, the gradient deliberately differs).
std::vector<MethodCase> exact_gradient_cases() {
  std::vector<MethodCase> cases;
  for (const auto& c : all_cases()) {
    auto method = make_method_from_yaml(c.yaml, "conformance.yaml");
    if (!method->trains_base_weights() && !detaches_norms(method->to_json())) cases.push_back(c);
  }
  return cases;
}

class ExactGradientConformance : public MethodConformance {};

TEST_P(ExactGradientConformance, ExactNormGradientsMatchFiniteDifferences) {
  auto slot = make_float64_slot(*method, model->config(), GetParam().biased);
  auto x = torch::randn({5, slot.plan.in_features}, torch::kFloat64);
  auto upstream = torch::randn({5, slot.plan.out_features}, torch::kFloat64);
  auto loss = [&]() { return (slot.layer->forward(x) * upstream).sum(); };
  loss().backward();
  const double eps = 1e-6;
  torch::NoGradGuard no_grad;
  for (auto& item : slot.layer->adapter()->named_parameters()) {
    auto flat = item.value().view(-1);
    auto grad = item.value().grad().view(-1);
    // Every coordinate of small tensors, a spread of them for larger ones.
    int64_t step = std::max<int64_t>(1, flat.numel() / 40);
    for (int64_t i = 0; i < flat.numel(); i += step) {
      double original = flat[i].item<double>();
      flat[i] = original + eps;
      double up = loss().item<double>();
      flat[i] = original - eps;
      double down = loss().item<double>();
      flat[i] = original;
      double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(grad[i].item<double>(), numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << item.key() << "[" << i << "]";
    }
  }
}

// With exact norms every gradient is the true one, so autograd through the float64 reference formula (which
// builds W' and never sees the adapter's forward) must give the same gradients as the adapter's forward, which
// rescales activations and keeps the products rather than the pre-scale activations. A magnitude entry of
// exactly zero makes those activations unrecoverable from the products; the gradients must not change.
TEST_P(ExactGradientConformance, GradientsMatchAutogradThroughTheReferenceFormulaAlsoWithAZeroMagnitude) {
  auto options = method->to_json();
  for (bool zero_magnitude : {false, true}) {
    SCOPED_TRACE(zero_magnitude ? "one magnitude entry zero" : "no zero magnitude");
    auto slot = make_float64_slot(*method, model->config(), GetParam().biased);
    auto params = slot.layer->adapter()->named_parameters();
    if (zero_magnitude) {
      // One entry of every trainable vector exactly zero (DoRA/BoRA's magnitudes, VeRA's scales).
      bool any = false;
      torch::NoGradGuard no_grad;
      for (auto& item : params)
        if (item.value().dim() == 1) item.value()[1] = 0.0, any = true;
      if (!any) continue;  // LoRA: nothing to zero
    }
    auto x = torch::randn({2, 3, slot.plan.in_features}, torch::kFloat64);
    auto upstream = torch::randn({2, 3, slot.plan.out_features}, torch::kFloat64);
    (slot.layer->forward(x) * upstream).sum().backward();
    std::map<std::string, torch::Tensor> adapter_grads;
    for (auto& item : params) {
      adapter_grads[item.key()] = item.value().grad().clone();
      item.value().mutable_grad() = torch::Tensor();
    }
    auto w = testing::method_oracle(method->name())
                 .merged_weight(slot.layer->weight, testing::adapter_tensors(*slot.layer->adapter()),
                                slot.plan.scaling, options);
    auto y = torch::matmul(x, w.t());
    if (slot.layer->has_bias()) y = y + slot.layer->bias;
    (y * upstream).sum().backward();
    for (auto& item : params) {
      ASSERT_TRUE(item.value().grad().defined()) << item.key();
      EXPECT_GT(item.value().grad().abs().max().item<double>(), 0.0) << item.key() << ": a zero gradient proves nothing";
      EXPECT_LE(max_relative_difference(adapter_grads[item.key()], item.value().grad()), 1e-10) << item.key();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllMethods, MethodConformance, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.id; });
INSTANTIATE_TEST_SUITE_P(ExactNormMethods, ExactGradientConformance, ::testing::ValuesIn(exact_gradient_cases()),
                         [](const auto& info) { return info.param.id; });

std::vector<MethodCase> bora_cases() {
  std::vector<MethodCase> cases;
  for (const auto& c : all_cases())
    if (make_method_from_yaml(c.yaml, "conformance.yaml")->name() == "bora") cases.push_back(c);
  return cases;
}
INSTANTIATE_TEST_SUITE_P(Bora, BoraConformance, ::testing::ValuesIn(bora_cases()),
                         [](const auto& info) { return info.param.id; });

TEST(MethodConformanceTable, EveryRegisteredMethodIsCovered) {
  // The registry defaults are always in; this guards the variant table against silently covering nothing.
  for (const auto& name : method_names()) {
    bool found = false;
    for (const auto& c : all_cases()) found |= c.yaml.find("name: " + name) != std::string::npos;
    EXPECT_TRUE(found) << name;
  }
  EXPECT_GE(all_cases().size(), 2 * (method_names().size() + 11));
  EXPECT_GE(bora_cases().size(), 10u);
  // Every registered method has its oracle.
  for (const auto& name : method_names()) EXPECT_EQ(testing::method_oracles().count(name), 1u) << name;
  int64_t biased = 0, decoder = 0, encoder = 0;
  for (const auto& c : all_cases()) {
    if (!c.family.empty()) ++encoder;
    else ++decoder, biased += c.biased;
  }
  EXPECT_EQ(2 * biased, decoder);
  EXPECT_GE(encoder, static_cast<int64_t>(method_names().size()) + 6);
}

}  // namespace
}  // namespace peftlab
