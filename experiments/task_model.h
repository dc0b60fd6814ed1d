// The backbone with what a task needs on top: the family's sequence-classification head for classification
// and regression (as Hugging Face's *ForSequenceClassification: decoders score the last real token), or the
// LM head for causal-LM and generation tasks. One loss and one prediction function serve every method.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "core/dataset.h"
#include "core/backbone.h"
#include "tasks/task.h"

namespace peftlab {

class TaskModelImpl : public torch::nn::Module {
 public:
  // num_outputs: classes (classification) or 1 (regression); ignored for LM tasks.
  TaskModelImpl(Backbone backbone, TaskKind kind, int64_t num_outputs);

  // Mean loss over the batch: cross-entropy (classification), MSE (regression), token cross-entropy over
  // positions whose label is not -100 (LM and generation tasks; logits at t predict labels at t+1).
  torch::Tensor loss(const Batch& batch);
  // The same loss as a sum and the number of terms it sums (examples, or target tokens), so that slices of
  // a batch on several processes add up to the whole batch's mean: loss = sum / count.
  struct LossTerms {
    torch::Tensor sum;
    int64_t count = 0;
  };
  LossTerms loss_terms(const Batch& batch);
  // Per-example values Task::score expects: class index, regression value, or summed token NLL (nats).
  torch::Tensor predict(const Batch& batch);
  // Number of target tokens the loss covers (for tokens/s accounting, all tokens otherwise).
  static int64_t token_count(const Batch& batch);

  TaskKind kind() const { return kind_; }
  // The causal-LM loss in tiles without the logits tensor (core/lm_loss.h); on by default. Off: the unfused
  // logits + cross-entropy, for comparison (`peftlab bench`, lora+logits).
  void set_tiled_lm_loss(bool on) { tiled_lm_loss_ = on; }
  bool has_score_head() const { return head != nullptr; }
  // The head's parameters under their Hugging Face names ("score.weight"), and loading them back: every one
  // must be present with its shape, otherwise InputError(source).
  std::map<std::string, torch::Tensor> head_hf_tensors() const;
  void load_head_hf_tensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

  Backbone backbone;
  // The family's head, registered under its Hugging Face module name ("score"); trains for every method.
  SequenceHead head;

 private:
  torch::Tensor head_output(const Batch& batch);
  torch::Tensor token_nll(const Batch& batch);  // (B, T-1) NLL, 0 where ignored
  TaskKind kind_;
  bool tiled_lm_loss_ = true;
};
TORCH_MODULE(TaskModel);

// Fits the task's inputs to the model family before tokenising: encoders (BERT, RoBERTa) read sentence tasks
// through their tokenizer's special-token template with token type ids; a task of another kind is an
// InputError(source) for them. Decoders keep the task as it is.
void fit_task_to_backbone(Task& task, const BackboneConfig& config, const std::string& source);

}  // namespace peftlab
