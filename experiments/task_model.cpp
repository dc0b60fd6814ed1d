#include "experiments/task_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.h"
#include "core/lm_loss.h"
#include "tasks/classification.h"

namespace peftlab {

namespace F = torch::nn::functional;

TaskModelImpl::TaskModelImpl(Backbone backbone_model, TaskKind kind, int64_t num_outputs) : kind_(kind) {
  backbone = register_module("backbone", std::move(backbone_model));
  if (kind == TaskKind::Classification || kind == TaskKind::Regression) {
    const int64_t outputs = kind == TaskKind::Regression ? 1 : num_outputs;
    head = register_module(backbone->sequence_head_name(), backbone->make_sequence_head(outputs));
  }
}

std::map<std::string, torch::Tensor> TaskModelImpl::head_hf_tensors() const {
  std::map<std::string, torch::Tensor> out;
  if (head)
    for (const auto& item : head->named_parameters()) out[head->hf_key(item.key())] = item.value().detach();
  return out;
}

void TaskModelImpl::load_head_hf_tensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
  if (!head) return;
  torch::NoGradGuard no_grad;
  for (auto& item : head->named_parameters()) {
    const std::string key = head->hf_key(item.key());
    auto it = tensors.find(key);
    if (it == tensors.end()) throw InputError(source, fmt::format("no {} (task head) in the file", key));
    if (!it->second.sizes().equals(item.value().sizes()))
      throw InputError(source, fmt::format("{} has shape ({}), the task needs ({})", key, fmt::join(it->second.sizes(), ", "),
                                           fmt::join(item.value().sizes(), ", ")));
    item.value().copy_(it->second);
  }
}

void fit_task_to_backbone(Task& task, const BackboneConfig& config, const std::string& source) {
  if (config.is_decoder()) return;
  auto* sentences = dynamic_cast<SentenceTask*>(&task);
  const bool sentence_output = task.kind() == TaskKind::Classification || task.kind() == TaskKind::Regression;
  if (sentences == nullptr || !sentence_output)
    throw InputError(source, fmt::format("task '{}' is {}; {} is an encoder and takes classification and regression "
                                         "tasks only", task.name(), to_string(task.kind()), config.model_type()));
  sentences->set_template_inputs(true);
}

torch::Tensor TaskModelImpl::head_output(const Batch& batch) {
  BackboneInputs inputs;
  inputs.input_ids = batch.input_ids;
  inputs.attention_mask = batch.attention_mask;
  inputs.token_type_ids = batch.token_type_ids;
  return head->forward(backbone->hidden_states(inputs), batch.attention_mask);
}

torch::Tensor TaskModelImpl::token_nll(const Batch& batch) {
  return causal_lm_token_nll(*backbone, backbone->hidden_states(batch.input_ids), batch.labels, kIgnoreIndex,
                             tiled_lm_loss_);
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
