// The adapters the built-in methods attach to AdaptableLinear slots (shared/DESIGN.md, "The methods, exactly").
// W0 is (out, in); B (out, r) starts at zero; A (r, in); s the scaling. DoRA and BoRA never build W' in the
// forward: they scale the input (b) and the output (a) around the frozen matmul and the low-rank path,
//   y = a * ((b*x) W0^T + s B(A(dropout(b*x)))),
// with a, b computed once per forward from V = W0 + sBA (under NoGradGuard when the norms are detached, so no
// (out, in) tensor enters the autograd graph).
#pragma once

#include <torch/torch.h>

#include "core/adaptable_linear.h"

namespace peftlab {

enum class InitA { kaiming_uniform, gaussian };
enum class BoraOrder { out_first, in_first };

// Shape and hyper-parameters of one adapter.
struct LowRankShape {
  int64_t in_features = 0, out_features = 0;
  int64_t rank = 0;        // 0: no low-rank path (magnitude-only ablation)
  double scaling = 1.0;    // s
  double dropout = 0.0;
  InitA init_a = InitA::kaiming_uniform;
};

// The divisors of BoRA's two normalisations: W' = diag(m_out / row) V diag(m_in / col). The one place BoRA is
// defined. out_first: row = ||V||_row, H = diag(m_out/row) V, col = ||H||_col.
//           in_first:  col = ||V||_col, H = V diag(m_in/col),  row = ||H||_row.
struct BoraDivisors {
  torch::Tensor row, col;
};
BoraDivisors bora_divisors(const torch::Tensor& V, const torch::Tensor& m_out, const torch::Tensor& m_in,
                           BoraOrder order);

// LoRA: y = x W0^T + s B(A(dropout(x))). Also the base of the decomposed adapters (A, B, s, dropout).
class LoraAdapter : public Adapter {
 public:
  // A is drawn from `generator`; tensors take W0's dtype and device.
  LoraAdapter(const LowRankShape& shape, const torch::Tensor& base_weight, torch::Generator generator);

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base_weight) override;
  torch::Tensor merged_weight(const torch::Tensor& base_weight) override;

  int64_t rank() const { return shape_.rank; }
  double scaling() const { return shape_.scaling; }
  torch::Tensor lora_A, lora_B;  // undefined when rank == 0

 protected:
  // s B(A(dropout(x))); an undefined tensor when rank == 0.
  torch::Tensor low_rank_path(const torch::Tensor& x);
  // V = W0 + s B A (W0 itself when rank == 0).
  torch::Tensor direction(const torch::Tensor& base_weight);
  LowRankShape shape_;
};

// DoRA (magnitude `m` per output row, norms of V over each row) and BoRA (also `m_in` per input column).
class DecomposedAdapter : public LoraAdapter {
 public:
  enum class Kind { dora, bora };
  DecomposedAdapter(Kind kind, const LowRankShape& shape, const torch::Tensor& base_weight,
                    torch::Generator generator, bool detach_norms, BoraOrder order = BoraOrder::out_first);

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base_weight) override;
  torch::Tensor merged_weight(const torch::Tensor& base_weight) override;

  torch::Tensor magnitude;     // m (DoRA) / m_out (BoRA), (out)
  torch::Tensor magnitude_in;  // m_in (BoRA only), (in)

 private:
  struct Scales {
    torch::Tensor out, in;  // a (out) and b (in); `in` undefined for DoRA
  };
  // a and b from the current parameters; the norms are constants when detached.
  Scales scales(const torch::Tensor& base_weight);
  Kind kind_;
  bool detach_norms_;
  BoraOrder order_;
};

}  // namespace peftlab
