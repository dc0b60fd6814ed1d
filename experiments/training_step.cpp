#include "experiments/training_step.h"

#include <cmath>
#include <limits>

#include "core/precision.h"
#include "methods/adaptation.h"

namespace peftlab {

std::unique_ptr<torch::optim::AdamW> make_optimizer(const torch::nn::Module& model, const TrainConfig& train) {
  ParameterGroups trainable = trainable_parameter_groups(model, train.no_decay);
  auto options = torch::optim::AdamWOptions(train.lr)
                     .betas({train.beta1, train.beta2})
                     .eps(train.eps)
                     .weight_decay(train.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!trainable.decay.empty())
    groups.emplace_back(trainable.decay, std::make_unique<torch::optim::AdamWOptions>(options));
  if (!trainable.no_decay.empty()) {
    auto without = std::make_unique<torch::optim::AdamWOptions>(options);
    without->weight_decay(0.0);
    groups.emplace_back(trainable.no_decay, std::move(without));
  }
  return std::make_unique<torch::optim::AdamW>(groups, options);
}

std::vector<torch::Tensor> optimizer_parameters(const torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params()) params.push_back(p);
  return params;
}

StepResult training_step(TaskModelImpl& model, torch::optim::Optimizer& optimizer,
                         const std::function<Batch()>& next_batch, const TrainConfig& train,
                         const DataParallel& dp) {
  const Precision precision = precision_from_name(train.precision);
  optimizer.zero_grad();
  StepResult result;
  double loss_sum = 0.0;
  for (int64_t micro = 0; micro < train.grad_accum; ++micro) {
    Batch batch = next_batch();
    if (dp.enabled()) {
      auto [begin, end] = dp.slice(batch.size());
      batch = batch_rows(batch, begin, end);
    }
    TaskModelImpl::LossTerms terms;
    {
      AutocastScope autocast(precision);  // the forward only; backward follows the graph it recorded
      terms = model.loss_terms(batch);
    }
    // Loss sum over this process's rows over the count of the whole batch: the processes' gradients then add
    // up to the one-process gradient of the batch mean.
    auto totals = torch::tensor({terms.sum.item<double>(), double(terms.count),
                                 double(TaskModelImpl::token_count(batch))}, torch::kFloat64);
    dp.sum(totals);
    const double count = std::max(totals[1].item<double>(), 1.0);
    (terms.sum / (count * static_cast<double>(train.grad_accum))).backward();
    loss_sum += totals[0].item<double>() / count;
    result.tokens += static_cast<int64_t>(totals[2].item<double>());
  }
  result.loss = loss_sum / static_cast<double>(train.grad_accum);
  const auto params = optimizer_parameters(optimizer);
  dp.sum_gradients(params);
  const double max_norm = train.grad_clip > 0 ? train.grad_clip : std::numeric_limits<double>::infinity();
  result.grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
  if (!std::isfinite(result.loss) || !std::isfinite(result.grad_norm)) return result;
  optimizer.step();
  result.stepped = true;
  return result;
}

}  // namespace peftlab
