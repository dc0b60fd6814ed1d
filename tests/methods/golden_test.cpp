// The adapters against tests/fixtures/methods_golden.json: float64 forward outputs, merged weights and
// gradients computed independently by tests/fixtures/make_methods_golden.py (plain Python, complex-step
// gradients; its `about` field explains every number). A, B are random and the magnitudes are perturbed, so
// nothing is an identity. A missing file is a failure.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/adaptable_linear.h"
#include "methods/registry.h"
#include "tests/methods/method_test_support.h"

namespace peftlab {
namespace {

using testing::max_relative_difference;

const std::filesystem::path kGolden = std::filesystem::path(PEFTLAB_SOURCE_DIR) / "tests/fixtures/methods_golden.json";

torch::Tensor to_tensor(const nlohmann::json& j) {
  std::vector<double> flat;
  std::vector<int64_t> shape;
  if (j.is_array() && !j.empty() && j[0].is_array()) {
    shape = {static_cast<int64_t>(j.size()), static_cast<int64_t>(j[0].size())};
    for (const auto& row : j)
      for (const auto& v : row) flat.push_back(v.get<double>());
  } else {
    shape = {static_cast<int64_t>(j.size())};
    for (const auto& v : j) flat.push_back(v.get<double>());
  }
  return torch::tensor(flat, torch::kFloat64).reshape(shape);
}

// "dora/exact" -> the method mapping that reproduces it.
std::string method_yaml(const std::string& key, const nlohmann::json& c) {
  if (key == "vera") return fmt::format("{{name: vera, rank: {}}}", c["rank"].get<int>());
  std::string rank = fmt::format("rank: {}, alpha: {}", c["rank"].get<int>(), c["alpha"].get<double>());
  if (key == "lora") return "{name: lora, " + rank + "}";
  bool exact = key.find("/exact") != std::string::npos;
  if (key.rfind("dora", 0) == 0) return fmt::format("{{name: dora, {}, detach_norm: {}}}", rank, !exact);
  std::string order = key.find("in_first") != std::string::npos ? "in_first" : "out_first";
  return fmt::format("{{name: bora, {}, order: {}, detach_norms: {}}}", rank, order, !exact);
}

// The golden file's names -> the adapters' tensor names (parameters and shared buffers).
const std::map<std::string, std::string>& tensor_names() {
  static const std::map<std::string, std::string> names = {
      {"A", "lora_A"},           {"B", "lora_B"},           {"m_out", "magnitude"},         {"m_in", "magnitude_in"},
      {"lambda_b", "lambda_b"},  {"lambda_d", "lambda_d"},  {"vera_A", "shared.vera_A"},    {"vera_B", "shared.vera_B"}};
  return names;
}

TEST(MethodsGolden, ForwardMergedWeightAndGradientsMatchPyTorchAutograd) {
  if (!std::filesystem::exists(kGolden)) FAIL() << "no " << kGolden;
  std::ifstream in(kGolden);
  auto golden = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    for (const auto& [key, expected] : c["expected"].items()) {
      SCOPED_TRACE(c["name"].get<std::string>() + " " + key);
      auto method = make_method_from_yaml(method_yaml(key, c));
      SlotPlan plan;
      plan.in_features = c["in_features"];
      plan.out_features = c["out_features"];
      plan.rank = c["rank"];
      plan.alpha = c["alpha"];
      plan.scaling = plan.alpha / plan.rank;
      ASSERT_DOUBLE_EQ(plan.scaling, c["scaling"].get<double>());
      // Through an AdaptableLinear with the case's bias (when it has one): the layer adds the bias to the
      // adapter's weight path, unscaled, as the golden y = x W'^T + b.
      const bool biased = !c["bias"].is_null();
      auto W0 = to_tensor(c["W0"]);
      AdaptableLinear layer("slot", plan.in_features, plan.out_features, biased);
      layer->to(torch::kFloat64);
      {
        torch::NoGradGuard no_grad;
        layer->weight.copy_(W0);
        if (biased) layer->bias.copy_(to_tensor(c["bias"]));
      }
      layer->weight.set_requires_grad(false);
      if (biased) layer->bias.set_requires_grad(false);
      // Shared state (VeRA's projections) sized as the case's: larger than this slot, as in a model.
      SlotPlan largest = plan;
      if (c.contains("vera_A")) {
        largest.in_features = c["vera_A"][0].size();
        largest.out_features = c["vera_B"].size();
      }
      auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
      auto shared = method->make_shared_state({largest}, layer->weight.options(), generator);
      auto adapter = method->make_adapter(plan, layer->weight, generator, shared);
      layer->attach(adapter);
      auto tensors = testing::adapter_tensors(*adapter);
      int64_t loaded = 0;
      {
        torch::NoGradGuard no_grad;
        for (const auto& [golden_name, ours] : tensor_names())
          if (tensors.count(ours)) tensors[ours].copy_(to_tensor(c[golden_name])), ++loaded;
      }
      EXPECT_EQ(loaded, static_cast<int64_t>(tensors.size())) << "an adapter tensor the golden file lacks";
      auto params = adapter->named_parameters();
      auto x = to_tensor(c["x"]);
      auto y = layer->forward(x);
      EXPECT_LE(max_relative_difference(y, to_tensor(expected["y"])), 1e-12);
      {
        torch::NoGradGuard no_grad;
        EXPECT_LE(max_relative_difference(adapter->merged_weight(W0), to_tensor(expected["merged_weight"])), 1e-12);
      }
      (y * to_tensor(c["upstream_grad"])).sum().backward();
      for (const auto& [name, grad] : expected["grad"].items()) {
        const auto& ours = tensor_names().at(name);
        ASSERT_TRUE(params.contains(ours)) << name;
        EXPECT_LE(max_relative_difference(params[ours].grad(), to_tensor(grad)), 1e-10) << name;
      }
      {
        // Merged (after the backward pass, which needs W0 as it was), the layer computes the same y with the
        // bias left as it was; unmerging restores W0.
        torch::NoGradGuard no_grad;
        layer->merge();
        EXPECT_LE(max_relative_difference(layer->forward(x), to_tensor(expected["y"])), 1e-12);
        if (biased) {
          EXPECT_TRUE(torch::equal(layer->bias, to_tensor(c["bias"])));
        }
        layer->unmerge();
        EXPECT_TRUE(torch::equal(layer->weight, W0));
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 24);  // 3 layers x 8 method variants
}

}  // namespace
}  // namespace peftlab
