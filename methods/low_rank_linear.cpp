#include "methods/low_rank_linear.h"

#include <torch/csrc/autograd/custom_function.h>

namespace peftlab {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace F = torch::nn::functional;

// The scales are applied to the weights, not to the activations: y = x W0s^T + s h Bs^T with
// W0s = diag(out_scale) W0 diag(in_scale), Bs = diag(out_scale) B and h = dropout(x) As^T, As = A diag(in_scale).
// The weights are out x in at most, the activations tokens x out: this leaves no element-wise pass over the
// activations in the forward, and the low-rank product is added inside the GEMM (addmm).
torch::Tensor scale_rows_cols(const torch::Tensor& w, const torch::Tensor& rows, const torch::Tensor& cols) {
  auto out = rows.defined() ? w * rows.unsqueeze(1) : w;
  return cols.defined() ? out * cols.unsqueeze(0) : out;
}

// The sum over rows of a * b (n x k each), in `dtype`, a block of rows at a time: the product is never a whole
// n x k tensor (a transient the size of an activation per adapted layer, in backward, where memory peaks).
torch::Tensor sum_of_products(const torch::Tensor& a, const torch::Tensor& b, at::ScalarType dtype) {
  const int64_t rows = a.size(0), block = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, a.size(1)));
  if (rows <= block) return (a.to(dtype) * b).sum(0);
  auto total = torch::zeros({a.size(1)}, a.options().dtype(dtype));
  for (int64_t start = 0; start < rows; start += block) {
    const int64_t n = std::min(block, rows - start);
    total.add_((a.narrow(0, start, n).to(dtype) * b.narrow(0, start, n)).sum(0));
  }
  return total;
}

struct Forward {
  torch::Tensor noise, h, y;  // 2-D: tokens x ...
};

// `noise` is dropout's multiplier (0 or 1 / (1 - p)), drawn as LibTorch's CPU dropout draws it. Dropping x
// and then scaling equals scaling and then dropping: both are element-wise products.
Forward forward_values(const torch::Tensor& x2, const LowRankLinear& layer) {
  Forward f;
  f.y = F::linear(x2, scale_rows_cols(layer.base_weight, layer.out_scale, layer.in_scale));
  if (layer.lora_A.defined()) {
    auto dropped = x2;
    if (layer.training && layer.dropout > 0) {
      f.noise = at::empty_like(x2).bernoulli_(1 - layer.dropout).div_(1 - layer.dropout);
      dropped = x2 * f.noise;
    }
    f.h = F::linear(dropped, scale_rows_cols(layer.lora_A, {}, layer.in_scale));
    const auto dtype = f.y.scalar_type();  // autocast's, when it is on
    f.y.addmm_(f.h.to(dtype), scale_rows_cols(layer.lora_B, layer.out_scale, {}).to(dtype).t(), 1.0, layer.scaling);
  }
  return f;
}

torch::Tensor with_leading_shape(const torch::Tensor& y2, const torch::Tensor& x) {
  auto shape = x.sizes().vec();
  shape.back() = y2.size(1);
  return y2.reshape(shape);
}

// Undefined optional tensors travel as empty ones: an autograd Function takes defined inputs only.
torch::Tensor or_empty(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() ? t : torch::empty({0}, like.options());
}
torch::Tensor or_undefined(const torch::Tensor& t) { return t.numel() > 0 ? t : torch::Tensor(); }

class LowRankLinearNode : public torch::autograd::Function<LowRankLinearNode> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& base_weight,
                               const torch::Tensor& lora_A, const torch::Tensor& lora_B, const torch::Tensor& out_scale,
                               const torch::Tensor& in_scale, double scaling, double dropout, bool training) {
    const LowRankLinear layer{base_weight, or_undefined(lora_A), or_undefined(lora_B), or_undefined(out_scale),
                              or_undefined(in_scale), scaling, dropout, training};
    Forward f = forward_values(x.reshape({-1, x.size(-1)}), layer);
    auto y = with_leading_shape(f.y, x);
    ctx->saved_data["scaling"] = scaling;
    const auto none = torch::empty({0}, x.options());
    ctx->save_for_backward({x, base_weight, lora_A, lora_B, out_scale, in_scale, out_scale.numel() > 0 ? y : none,
                            f.h.defined() ? f.h : none, f.noise.defined() ? f.noise.ne(0) : none});
    if (f.noise.defined()) ctx->saved_data["dropout"] = dropout;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &W0 = saved[1], &y = saved[6], &h = saved[7], &mask = saved[8];
    const auto A = or_undefined(saved[2]), B = or_undefined(saved[3]), out_scale = or_undefined(saved[4]),
               in_scale = or_undefined(saved[5]);
    const double s = ctx->saved_data["scaling"].toDouble();
    const int64_t in = x.size(-1), out = W0.size(0);
    const auto g = grads[0].reshape({-1, out});
    const auto dtype = g.scalar_type();  // the forward's matmul dtype (bfloat16 under autocast)
    const auto x2 = x.reshape({-1, in});
    auto mm_input = [&](const torch::Tensor& t) { return t.to(dtype); };
    torch::Tensor noise;  // in x's dtype, as the forward drew it
    if (mask.numel() > 0) noise = mask.reshape({-1, in}).to(x.scalar_type()).div_(1 - ctx->saved_data["dropout"].toDouble());
    const bool input_grad = ctx->needs_input_grad(0), in_scale_grad = in_scale.defined() && ctx->needs_input_grad(5);

    // y = t * out_scale: the magnitude's gradient is the sum over tokens of g * t, t = y / out_scale. Where an
    // out_scale entry is exactly 0 that column of t is gone from y, and t is computed again.
    torch::Tensor grad_out_scale;
    if (out_scale.defined() && ctx->needs_input_grad(4)) {
      const auto y2 = y.reshape({-1, out});
      if (!(out_scale == 0).any().item<bool>()) {
        grad_out_scale = sum_of_products(g, y2, out_scale.scalar_type()) / out_scale;
      } else {
        auto t = F::linear(mm_input(x2), mm_input(scale_rows_cols(W0, {}, in_scale)));
        if (A.defined()) t.addmm_(h, mm_input(B).t(), 1.0, s);
        grad_out_scale = sum_of_products(g, t, out_scale.scalar_type());
      }
    }

    torch::Tensor grad_W0, grad_A, grad_B, g_h;
    if (ctx->needs_input_grad(1))
      grad_W0 = scale_rows_cols(g.t().mm(mm_input(x2)).to(W0.scalar_type()), out_scale, in_scale);
    if (A.defined()) {
      if (ctx->needs_input_grad(3)) grad_B = scale_rows_cols(g.t().mm(h).to(B.scalar_type()) * s, out_scale, {});
      if (ctx->needs_input_grad(2) || input_grad || in_scale_grad) {
        g_h = g.mm(mm_input(scale_rows_cols(B, out_scale, {}))) * s;
        if (ctx->needs_input_grad(2)) {
          const auto dropped = mm_input(noise.defined() ? x2 * noise : x2);
          grad_A = scale_rows_cols(g_h.t().mm(dropped).to(A.scalar_type()), {}, in_scale);
        }
      }
    }

    // The gradient of x through the scaled weights: d(y)/d(x) = W0s + s Bs As (with the dropout mask).
    // With in_scale trained (BoRA), the gradient of u = x * in_scale is formed first: in_scale's gradient is
    // the sum over tokens of that times x.
    torch::Tensor grad_x, grad_in_scale;
    if (input_grad || in_scale_grad) {
      const auto& column_scale = in_scale_grad ? torch::Tensor() : in_scale;
      auto grad = g.mm(mm_input(scale_rows_cols(W0, out_scale, column_scale)));
      if (g_h.defined()) {
        const auto a = mm_input(scale_rows_cols(A, {}, column_scale));
        if (!noise.defined() && dtype == x.scalar_type()) {
          grad.addmm_(g_h, a);
        } else {  // as autograd would: each matmul's result in x's dtype, then the mask, then the sum
          auto low_rank = g_h.mm(a).to(x.scalar_type());
          grad = grad.to(x.scalar_type()) + (noise.defined() ? low_rank * noise : low_rank);
        }
      }
      grad = grad.to(x.scalar_type());
      if (in_scale_grad) {
        grad_in_scale = sum_of_products(grad, x2, in_scale.scalar_type());
        if (input_grad) grad_x = grad.mul_(in_scale).reshape(x.sizes());  // grad is this function's own tensor
      } else if (input_grad) {
        grad_x = grad.reshape(x.sizes());
      }
    }
    return {grad_x, grad_W0, grad_A, grad_B, grad_out_scale, grad_in_scale, {}, {}, {}};
  }
};

}  // namespace

torch::Tensor low_rank_linear(const torch::Tensor& x, const LowRankLinear& layer) {
  const auto inputs = {x, layer.base_weight, layer.lora_A, layer.lora_B, layer.out_scale, layer.in_scale};
  bool recording = false;
  if (torch::GradMode::is_enabled())
    for (const auto& t : inputs) recording = recording || (t.defined() && t.requires_grad());
  if (!recording) return with_leading_shape(forward_values(x.reshape({-1, x.size(-1)}), layer).y, x);
  return LowRankLinearNode::apply(x, layer.base_weight, or_empty(layer.lora_A, x), or_empty(layer.lora_B, x),
                                  or_empty(layer.out_scale, x), or_empty(layer.in_scale, x), layer.scaling,
                                  layer.dropout, layer.training);
}

}  // namespace peftlab
