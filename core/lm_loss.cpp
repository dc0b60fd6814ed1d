#include "core/lm_loss.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <stdexcept>

#include "core/precision.h"

namespace peftlab {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The tile's log-softmax runs in at least float32, as cross_entropy on the float32 logits the unfused path makes.
torch::ScalarType softmax_type(torch::ScalarType compute) { return torch::promote_types(compute, torch::kFloat32); }

class TiledNll : public torch::autograd::Function<TiledNll> {
 public:
  // hidden (N, H) and weight (V, H) share one dtype; targets (N) with ignored ones already replaced by 0 and
  // `scored` (N) 1 where a target counts.
  //
  // When only the hidden states need a gradient (every adapter method: the output projection is frozen), each
  // tile's gradient rows (softmax - one-hot) W are formed here, while the tile's logits exist, and backward only
  // scales them by the incoming per-token gradient. When the projection trains too (full fine-tuning), its
  // gradient sums over tokens with the incoming gradient inside, so backward computes each tile's logits again.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, const torch::Tensor& scored, int64_t tile_rows) {
    const int64_t n = hidden.size(0);
    const bool rows_only = hidden.requires_grad() && !weight.requires_grad();
    auto nll = torch::empty({n}, hidden.options().dtype(softmax_type(hidden.scalar_type())));
    auto log_sum_exp = torch::empty_like(nll);
    torch::Tensor row_grads = rows_only ? torch::empty_like(hidden) : torch::Tensor();
    for (int64_t start = 0; start < n; start += tile_rows) {
      const int64_t rows = std::min(tile_rows, n - start);
      auto logits = torch::mm(hidden.narrow(0, start, rows), weight.t()).to(nll.scalar_type());
      auto tile_targets = targets.narrow(0, start, rows).unsqueeze(1);
      auto picked = logits.gather(1, tile_targets).squeeze(1);
      // log-sum-exp with one exponential pass, done in place; the exponentials then give the softmax.
      auto largest = std::get<0>(logits.max(1, /*keepdim=*/true));
      auto exps = logits.sub_(largest).exp_();
      auto sums = exps.sum(1, /*keepdim=*/true);
      auto lse = (largest + sums.log()).squeeze(1);
      log_sum_exp.narrow(0, start, rows).copy_(lse);
      nll.narrow(0, start, rows).copy_((lse - picked) * scored.narrow(0, start, rows));
      if (rows_only) {
        auto grad = exps.div_(sums).scatter_add_(1, tile_targets, torch::full({rows, 1}, -1.0, exps.options()));
        row_grads.narrow(0, start, rows).copy_(torch::mm(grad.to(hidden.scalar_type()), weight));
      }
    }
    ctx->saved_data["tile_rows"] = tile_rows;
    ctx->saved_data["rows_only"] = rows_only;
    if (rows_only) ctx->save_for_backward({row_grads, scored});
    else ctx->save_for_backward({hidden, weight, targets, scored, log_sum_exp});
    return nll;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    if (ctx->saved_data["rows_only"].toBool()) {
      const auto &row_grads = saved[0], &scored = saved[1];
      auto scale = (grad_outputs[0] * scored).to(row_grads.scalar_type()).unsqueeze(1);
      return {row_grads * scale, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    const auto &hidden = saved[0], &weight = saved[1], &targets = saved[2], &scored = saved[3], &lse = saved[4];
    const int64_t tile_rows = ctx->saved_data["tile_rows"].toInt();
    const bool want_hidden = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1);
    auto row_grad = (grad_outputs[0] * scored).to(lse.scalar_type());
    torch::Tensor grad_hidden = want_hidden ? torch::empty_like(hidden) : torch::Tensor();
    torch::Tensor grad_weight = want_weight ? torch::zeros_like(weight) : torch::Tensor();
    const int64_t n = hidden.size(0);
    for (int64_t start = 0; start < n; start += tile_rows) {
      const int64_t rows = std::min(tile_rows, n - start);
      auto h = hidden.narrow(0, start, rows);
      auto logits = torch::mm(h, weight.t()).to(lse.scalar_type());
      auto grad = softmax_minus_one_hot(logits, lse.narrow(0, start, rows), targets.narrow(0, start, rows).unsqueeze(1));
      auto grad_logits = grad.mul_(row_grad.narrow(0, start, rows).unsqueeze(1)).to(hidden.scalar_type());
      if (want_hidden) grad_hidden.narrow(0, start, rows).copy_(torch::mm(grad_logits, weight));
      if (want_weight) grad_weight.addmm_(grad_logits.t(), h);
    }
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

 private:
  // d nll_i / d logits_ij = softmax_ij - [j == target_i], in place of the tile's logits (lse: (rows)).
  static torch::Tensor softmax_minus_one_hot(torch::Tensor& logits, const torch::Tensor& lse, const torch::Tensor& targets) {
    auto grad = logits.sub_(lse.unsqueeze(1)).exp_();
    return grad.scatter_add_(1, targets, torch::full({grad.size(0), 1}, -1.0, grad.options()));
  }
};

// The dtype the output projection runs in: autocast's where it is on for the tensors' device, else the inputs'.
torch::ScalarType projection_type(const torch::Tensor& hidden, const torch::Tensor& weight) {
  const AutocastState autocast = AutocastState::current();
  if (hidden.is_cuda() && autocast.cuda) return autocast.cuda_dtype;
  if (hidden.is_cpu() && autocast.cpu) return autocast.cpu_dtype;
  return torch::promote_types(hidden.scalar_type(), weight.scalar_type());
}

}  // namespace

torch::Tensor tiled_token_nll(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                              int64_t ignore_index, int64_t tile_rows) {
  if (hidden.dim() != 2 || weight.dim() != 2 || hidden.size(1) != weight.size(1) || targets.dim() != 1 ||
      targets.size(0) != hidden.size(0))
    throw std::invalid_argument("tiled_token_nll needs hidden (N, H), weight (V, H) and targets (N)");
  if (tile_rows <= 0) tile_rows = std::max<int64_t>(1, kLossTileElements / std::max<int64_t>(1, weight.size(0)));
  const auto dtype = projection_type(hidden, weight);
  auto scored = targets != ignore_index;
  auto safe_targets = targets.masked_fill(scored.logical_not(), 0);
  return TiledNll::apply(hidden.to(dtype), weight.to(dtype), safe_targets, scored.to(softmax_type(dtype)), tile_rows);
}

torch::Tensor causal_lm_token_nll(BackboneImpl& backbone, const torch::Tensor& hidden, const torch::Tensor& labels,
                                  int64_t ignore_index, bool tiled) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  auto predicting = hidden.narrow(1, 0, T - 1);
  auto targets = labels.narrow(1, 1, T - 1).reshape({-1});
  torch::Tensor weight = tiled ? backbone.lm_head_weight() : torch::Tensor();
  if (weight.defined())
    return tiled_token_nll(predicting.reshape({-1, hidden.size(2)}), weight, targets, ignore_index).view({B, T - 1});
  auto logits = backbone.logits(predicting);
  logits = logits.to(softmax_type(logits.scalar_type()));
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets,
                          F::CrossEntropyFuncOptions().ignore_index(ignore_index).reduction(torch::kNone))
      .view({B, T - 1});
}

}  // namespace peftlab
