// Shared helpers of the methods tests: per-method oracles written independently from the implementations
// (docs/methods.md's formulas, built explicitly step by step in float64, without methods/*.h), and random
// perturbation of adapter parameters. A new method adds its oracle to method_oracles() below.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>

namespace peftlab::testing {

// max |a - b| over max |b|: a relative error that does not blow up on entries near zero.
inline double max_relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// An adapter's tensors by name, parameters and buffers, recursively ("lora_A", "shared.vera_A").
using TensorMap = std::map<std::string, torch::Tensor>;

inline TensorMap adapter_tensors(torch::nn::Module& adapter) {
  TensorMap out;
  for (const auto& item : adapter.named_parameters()) out[item.key()] = item.value();
  for (const auto& item : adapter.named_buffers()) out[item.key()] = item.value();
  return out;
}

struct MethodOracle {
  // Trainable parameters the adapter adds to an (out, in) weight at rank r.
  std::function<int64_t(int64_t in, int64_t out, int64_t r)> parameter_count;
  // W' in float64 from the slot's frozen weight as the layer holds it, the adapter's tensors, the slot's
  // scaling s and the method's options (Method::to_json).
  std::function<torch::Tensor(const torch::Tensor& base_weight, const TensorMap& t, double s,
                              const nlohmann::json& options)>
      merged_weight;
};

namespace oracle_detail {

inline torch::Tensor f64(const torch::Tensor& t) { return t.to(torch::kFloat64); }
inline torch::Tensor get(const TensorMap& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() ? torch::Tensor() : f64(it->second);
}
inline torch::Tensor row_norms(const torch::Tensor& M) {
  auto r = torch::empty({M.size(0)}, torch::kFloat64);
  for (int64_t i = 0; i < M.size(0); ++i) r[i] = torch::sqrt((M[i] * M[i]).sum());
  return r;
}
inline torch::Tensor col_norms(const torch::Tensor& M) { return row_norms(M.t()); }
inline torch::Tensor diag_left(const torch::Tensor& d, const torch::Tensor& M) { return torch::mm(torch::diag(d), M); }
inline torch::Tensor diag_right(const torch::Tensor& M, const torch::Tensor& d) { return torch::mm(M, torch::diag(d)); }
// V = W0 + s B A (W0 itself without A, B: rank 0).
inline torch::Tensor low_rank_sum(const torch::Tensor& W0, const TensorMap& t, double s) {
  auto A = get(t, "lora_A"), B = get(t, "lora_B");
  return A.defined() ? f64(W0) + s * torch::mm(B, A) : f64(W0);
}

}  // namespace oracle_detail

// Every method's oracle, by registry name.
inline const std::map<std::string, MethodOracle>& method_oracles() {
  using namespace oracle_detail;
  static const std::map<std::string, MethodOracle> oracles = {
      // Full fine-tuning attaches no adapter: nothing added.
      {"full", {[](int64_t, int64_t, int64_t) { return int64_t{0}; }, nullptr}},
      // LoRA: W' = W0 + s B A.
      {"lora",
       {[](int64_t in, int64_t out, int64_t r) { return r * (in + out); },
        [](const torch::Tensor& W0, const TensorMap& t, double s, const nlohmann::json&) {
          return low_rank_sum(W0, t, s);
        }}},
      // DoRA: W' = diag(m) V / ||V||_row.
      {"dora",
       {[](int64_t in, int64_t out, int64_t r) { return r * (in + out) + out; },
        [](const torch::Tensor& W0, const TensorMap& t, double s, const nlohmann::json&) {
          auto V = low_rank_sum(W0, t, s);
          return diag_left(get(t, "magnitude") / row_norms(V), V);
        }}},
      // BoRA: out_first H = diag(m_out / ||V||_row) V, W' = H diag(m_in / ||H||_col); in_first the other way.
      {"bora",
       {[](int64_t in, int64_t out, int64_t r) { return r * (in + out) + out + in; },
        [](const torch::Tensor& W0, const TensorMap& t, double s, const nlohmann::json& options) {
          auto V = low_rank_sum(W0, t, s);
          auto mo = get(t, "magnitude"), mi = get(t, "magnitude_in");
          if (options.at("order") == "out_first") {
            auto H = diag_left(mo / row_norms(V), V);
            return diag_right(H, mi / col_norms(H));
          }
          auto H = diag_right(V, mi / col_norms(V));
          return diag_left(mo / row_norms(H), H);
        }}},
      // PiSSA: LoRA's W' = W_res + s B A over the residual the layer holds (its initialisation is checked
      // against the SVD of W0 in pissa_test.cpp).
      {"pissa",
       {[](int64_t in, int64_t out, int64_t r) { return r * (in + out); },
        [](const torch::Tensor& W_res, const TensorMap& t, double s, const nlohmann::json&) {
          return low_rank_sum(W_res, t, s);
        }}},
      // VeRA: W' = W0 + diag(lambda_b) B[:out, :] diag(lambda_d) A[:, :in], A and B shared and frozen.
      {"vera",
       {[](int64_t, int64_t out, int64_t r) { return out + r; },
        [](const torch::Tensor& W0, const TensorMap& t, double, const nlohmann::json&) {
          const int64_t out = W0.size(0), in = W0.size(1);
          auto A = get(t, "shared.vera_A").slice(1, 0, in), B = get(t, "shared.vera_B").slice(0, 0, out);
          return f64(W0) + torch::mm(diag_right(diag_left(get(t, "lambda_b"), B), get(t, "lambda_d")), A);
        }}},
  };
  return oracles;
}

// The oracle of a registered method; a method without one fails the test that asks.
inline const MethodOracle& method_oracle(const std::string& name) {
  static const MethodOracle none{[](int64_t, int64_t, int64_t) { return int64_t{-1}; }, nullptr};
  auto it = method_oracles().find(name);
  if (it == method_oracles().end()) {
    ADD_FAILURE() << "no oracle in tests/methods/method_test_support.h for method " << name;
    return none;
  }
  return it->second;
}

// Adds random noise to every trainable adapter parameter of `module` so nothing is at its initial value:
// relative (signs kept: magnitudes stay positive) for tensors with a non-zero entry, absolute for those that start
// at zero (LoRA's B, VeRA's lambda_b). Deterministic for a given torch seed.
inline void perturb_adapter_parameters(torch::nn::Module& module, double strength = 0.2) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    if (item.key().find("adapter.") == std::string::npos) continue;
    auto& p = item.value();
    if (!p.requires_grad()) continue;
    if (p.ne(0).any().item<bool>()) p.mul_(1.0 + strength * torch::randn_like(p));
    else p.add_(strength * 0.5 * torch::randn_like(p));
  }
}

}  // namespace peftlab::testing
