#include "experiments/task_model.h"

namespace peftlab {

namespace F = torch::nn::functional;

TaskModelImpl::TaskModelImpl(Llama backbone_model, TaskKind kind, int64_t num_outputs) : kind_(kind) {
  backbone = register_module("backbone", std::move(backbone_model));
  if (kind == TaskKind::Classification || kind == TaskKind::Regression) {
    const int64_t outputs = kind == TaskKind::Regression ? 1 : num_outputs;
    score = register_module("score", torch::nn::Linear(torch::nn::LinearOptions(backbone->config().dim, outputs).bias(false)));
    // Hugging Face initialises the score head with normal(0, initializer_range = 0.02).
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(score->weight, 0.0, 0.02);
  }
}

torch::Tensor TaskModelImpl::head_output(const Batch& batch) {
  auto hidden = backbone->hidden_states(batch.input_ids);
  return score(LlamaImpl::gather_last(hidden, batch.last_index));
}

torch::Tensor TaskModelImpl::token_nll(const Batch& batch) {
  auto logits = backbone->forward(batch.input_ids);
  const int64_t T = logits.size(1);
  auto predicted = logits.narrow(1, 0, T - 1).to(torch::kFloat32);
  auto targets = batch.labels.narrow(1, 1, T - 1);
  auto nll = F::cross_entropy(predicted.reshape({-1, predicted.size(-1)}), targets.reshape({-1}),
                              F::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex).reduction(torch::kNone));
  return nll.view({targets.size(0), T - 1});
}

torch::Tensor TaskModelImpl::loss(const Batch& batch) {
  LossTerms terms = loss_terms(batch);
  return terms.sum / double(std::max<int64_t>(terms.count, 1));
}

TaskModelImpl::LossTerms TaskModelImpl::loss_terms(const Batch& batch) {
  switch (kind_) {
    case TaskKind::Classification:
      return {F::cross_entropy(head_output(batch).to(torch::kFloat32), batch.labels,
                               F::CrossEntropyFuncOptions().reduction(torch::kSum)),
              batch.size()};
    case TaskKind::Regression:
      return {F::mse_loss(head_output(batch).squeeze(-1).to(torch::kFloat32), batch.labels.to(torch::kFloat32),
                          F::MSELossFuncOptions().reduction(torch::kSum)),
              batch.size()};
    default: {
      auto counted = (batch.labels.narrow(1, 1, batch.labels.size(1) - 1) != kIgnoreIndex).sum().item<int64_t>();
      return {token_nll(batch).sum(), counted};
    }
  }
}

torch::Tensor TaskModelImpl::predict(const Batch& batch) {
  torch::NoGradGuard no_grad;
  switch (kind_) {
    case TaskKind::Classification:
      return head_output(batch).argmax(-1).to(torch::kFloat64);
    case TaskKind::Regression:
      return head_output(batch).squeeze(-1).to(torch::kFloat64);
    default:
      return token_nll(batch).sum(1).to(torch::kFloat64);
  }
}

int64_t TaskModelImpl::token_count(const Batch& batch) { return batch.attention_mask.sum().item<int64_t>(); }

}  // namespace peftlab
