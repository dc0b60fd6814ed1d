#include "methods/low_rank_linear.h"

#include <torch/csrc/autograd/custom_function.h>

namespace peftlab {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace F = torch::nn::functional;

// The forward arithmetic, shared by the recorded and the unrecorded forms. `noise` is dropout's multiplier (0
// or 1 / (1 - p)), drawn as LibTorch's CPU dropout draws it, so the masks follow the seed as before.
struct Forward {
  torch::Tensor u, noise, h, t;
};

Forward forward_values(const torch::Tensor& x, const LowRankLinear& layer) {
  Forward f;
  f.u = layer.in_scale.defined() ? x * layer.in_scale : x;
  f.t = F::linear(f.u, layer.base_weight);
  if (layer.lora_A.defined()) {
    auto dropped = f.u;
    if (layer.training && layer.dropout > 0) {
      f.noise = at::empty_like(f.u).bernoulli_(1 - layer.dropout).div_(1 - layer.dropout);
      dropped = f.u * f.noise;
    }
    f.h = F::linear(dropped, layer.lora_A);
    f.t = f.t + F::linear(f.h, layer.lora_B) * layer.scaling;
  }
  return f;
}

// Undefined optional tensors travel as empty ones: an autograd Function takes defined inputs only.
torch::Tensor or_empty(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() ? t : torch::empty({0}, like.options());
}

class LowRankLinearNode : public torch::autograd::Function<LowRankLinearNode> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& base_weight,
                               const torch::Tensor& lora_A, const torch::Tensor& lora_B, const torch::Tensor& out_scale,
                               const torch::Tensor& in_scale, double scaling, double dropout, bool training) {
    const bool low_rank = lora_A.numel() > 0, scaled_output = out_scale.numel() > 0, scaled_input = in_scale.numel() > 0;
    LowRankLinear layer{base_weight, low_rank ? lora_A : torch::Tensor(), low_rank ? lora_B : torch::Tensor(),
                        scaled_output ? out_scale : torch::Tensor(), scaled_input ? in_scale : torch::Tensor(),
                        scaling, dropout, training};
    Forward f = forward_values(x, layer);
    auto y = scaled_output ? f.t * out_scale : f.t;
    const bool keep_output = y.scalar_type() == f.t.scalar_type();
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["keep_output"] = keep_output;
    ctx->saved_data["t_dtype"] = static_cast<int64_t>(f.t.scalar_type());
    const auto none = torch::empty({0}, x.options());
    const auto pre_scale = !scaled_output ? none : keep_output ? y : f.t;
    ctx->save_for_backward({x, base_weight, lora_A, lora_B, out_scale, in_scale, pre_scale, low_rank ? f.h : none,
                            f.noise.defined() ? f.noise.ne(0) : none});
    if (f.noise.defined()) ctx->saved_data["dropout"] = dropout;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &W0 = saved[1], &A = saved[2], &B = saved[3], &out_scale = saved[4],
               &in_scale = saved[5], &kept = saved[6], &h = saved[7], &mask = saved[8];
    const bool low_rank = A.numel() > 0, scaled_output = out_scale.numel() > 0, scaled_input = in_scale.numel() > 0,
               dropped = mask.numel() > 0;
    const double scaling = ctx->saved_data["scaling"].toDouble();
    const auto t_dtype = static_cast<at::ScalarType>(ctx->saved_data["t_dtype"].toInt());
    const int64_t in = x.size(-1), out = W0.size(0);
    auto g = grads[0].reshape({-1, out});
    auto x2 = x.reshape({-1, in});
    auto u = scaled_input ? x2 * in_scale : x2;
    torch::Tensor noise;
    if (dropped) {
      const double p = ctx->saved_data["dropout"].toDouble();
      noise = mask.reshape({-1, in}).to(u.scalar_type()).div_(1 - p);
    }
    auto cast = [&](const torch::Tensor& t) { return t.to(t_dtype); };
    const auto h2 = low_rank ? h.reshape({-1, A.size(0)}) : h;

    torch::Tensor grad_out_scale;
    if (scaled_output && ctx->needs_input_grad(4)) {
      // sum over tokens of g * t, with t recovered from y = t * out_scale where out_scale has no zero.
      auto kept2 = kept.reshape({-1, out});
      if (!ctx->saved_data["keep_output"].toBool()) {
        grad_out_scale = (g * kept2).sum(0);
      } else if (!(out_scale == 0).any().item<bool>()) {
        grad_out_scale = (g * kept2).sum(0) / out_scale;
      } else {
        auto t = F::linear(cast(u), cast(W0));
        if (low_rank) t = t + F::linear(h2, cast(B)) * scaling;
        grad_out_scale = (g * t).sum(0);
      }
      grad_out_scale = grad_out_scale.to(out_scale.scalar_type());
    }

    const bool need_u = ctx->needs_input_grad(0) || ctx->needs_input_grad(5);
    auto g_t = cast(scaled_output ? g * out_scale : g);
    torch::Tensor grad_W0, grad_A, grad_B, g_u;
    if (ctx->needs_input_grad(1)) grad_W0 = g_t.t().mm(cast(u)).to(W0.scalar_type());
    if (need_u) g_u = g_t.mm(cast(W0)).to(u.scalar_type());
    if (low_rank) {
      auto g_lin = g_t * scaling;
      if (ctx->needs_input_grad(3)) grad_B = g_lin.t().mm(h2).to(B.scalar_type());
      if (ctx->needs_input_grad(2) || need_u) {
        auto g_h = g_lin.mm(cast(B));
        if (ctx->needs_input_grad(2)) grad_A = g_h.t().mm(cast(dropped ? u * noise : u)).to(A.scalar_type());
        if (need_u) {
          auto g_dropped = g_h.mm(cast(A)).to(u.scalar_type());
          g_u = g_u + (dropped ? g_dropped * noise : g_dropped);
        }
      }
    }

    torch::Tensor grad_x, grad_in_scale;
    if (ctx->needs_input_grad(0)) grad_x = (scaled_input ? g_u * in_scale : g_u).reshape(x.sizes()).to(x.scalar_type());
    if (ctx->needs_input_grad(5)) grad_in_scale = (g_u * x2).sum(0).to(in_scale.scalar_type());
    return {grad_x, grad_W0, grad_A, grad_B, grad_out_scale, grad_in_scale, {}, {}, {}};
  }
};

}  // namespace

torch::Tensor low_rank_linear(const torch::Tensor& x, const LowRankLinear& layer) {
  const auto inputs = {x, layer.base_weight, layer.lora_A, layer.lora_B, layer.out_scale, layer.in_scale};
  bool recording = false;
  if (torch::GradMode::is_enabled())
    for (const auto& t : inputs) recording = recording || (t.defined() && t.requires_grad());
  if (!recording) {  // evaluation keeps nothing
    auto t = forward_values(x, layer).t;
    return layer.out_scale.defined() ? t * layer.out_scale : t;
  }
  return LowRankLinearNode::apply(x, layer.base_weight, or_empty(layer.lora_A, x), or_empty(layer.lora_B, x),
                                  or_empty(layer.out_scale, x), or_empty(layer.in_scale, x), layer.scaling,
                                  layer.dropout, layer.training);
}

}  // namespace peftlab
