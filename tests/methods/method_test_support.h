// Shared helpers of the methods tests: an independent float64 reference of docs/methods.md's formulas (built
// explicitly, step by step, without methods/lora.h, dora.h, bora.h), and random perturbation of adapter parameters.
#pragma once

#include <torch/torch.h>

#include <string>


namespace peftlab::testing {

// W' from docs/methods.md, computed in float64 by building every intermediate matrix.
// method: "lora", "dora", "bora_out_first", "bora_in_first". m_out/m_in may be undefined where unused;
// A/B undefined means rank 0.
inline torch::Tensor reference_merged_weight(const std::string& method, const torch::Tensor& W0, const torch::Tensor& A,
                                             const torch::Tensor& B, double s, const torch::Tensor& m_out,
                                             const torch::Tensor& m_in) {
  auto w0 = W0.to(torch::kFloat64);
  torch::Tensor V = A.defined() ? w0 + s * torch::mm(B.to(torch::kFloat64), A.to(torch::kFloat64)) : w0;
  if (method == "lora") return V;
  auto mo = m_out.defined() ? m_out.to(torch::kFloat64) : torch::Tensor();
  auto mi = m_in.defined() ? m_in.to(torch::kFloat64) : torch::Tensor();
  const int64_t out = V.size(0), in = V.size(1);
  auto rows = torch::empty({out}, torch::kFloat64), cols = torch::empty({in}, torch::kFloat64);
  auto row_norms = [&](const torch::Tensor& M) {
    auto r = torch::empty({M.size(0)}, torch::kFloat64);
    for (int64_t i = 0; i < M.size(0); ++i) r[i] = torch::sqrt((M[i] * M[i]).sum());
    return r;
  };
  auto col_norms = [&](const torch::Tensor& M) { return row_norms(M.t()); };
  auto diag_left = [&](const torch::Tensor& d, const torch::Tensor& M) { return torch::mm(torch::diag(d), M); };
  auto diag_right = [&](const torch::Tensor& M, const torch::Tensor& d) { return torch::mm(M, torch::diag(d)); };
  if (method == "dora") return diag_left(mo / row_norms(V), V);
  if (method == "bora_out_first") {
    auto H = diag_left(mo / row_norms(V), V);
    return diag_right(H, mi / col_norms(H));
  }
  if (method == "bora_in_first") {
    auto H = diag_right(V, mi / col_norms(V));
    return diag_left(mo / row_norms(H), H);
  }
  throw std::invalid_argument("reference_merged_weight: unknown method " + method);
}

// Adds random noise to every adapter parameter of `module` (multiplicative for magnitudes) so nothing is at
// its initial value; deterministic for a given torch seed.
inline void perturb_adapter_parameters(torch::nn::Module& module, double strength = 0.2) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    bool magnitude = name.find("magnitude") != std::string::npos;
    bool lora = name.find("lora_A") != std::string::npos || name.find("lora_B") != std::string::npos;
    if (magnitude) p.mul_(1.0 + strength * torch::randn_like(p));
    else if (lora) p.add_(strength * 0.5 * torch::randn_like(p));
  }
}

}  // namespace peftlab::testing
