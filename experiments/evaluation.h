// Evaluation of a task model on a split, one function for every task kind, with merged weights:
//   Classification / Regression: the score head's class or value, batched.
//   CausalLM: summed token NLL per block, batched (perplexity and bits per byte from it).
//   Generation (TextAnswerTask): by the task's protocol. generate: a greedy (or beam-search) reply per
//     example with the KV cache, the answer extracted from it, no_match_rate recorded; loglik: every
//     candidate answer's continuation log-likelihood, batched, the best one taken; both: the generate
//     metrics plus loglik_accuracy.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "experiments/task_model.h"
#include "tasks/task.h"

namespace peftlab {

// One split's examples as read (for candidates and submission ids) and as tokenised, in the same order
// (a causal-LM split: its one text, and its blocks).
struct EvalSplit {
  std::string split;
  std::vector<Example> examples;
  std::vector<TokenizedExample> tokenized;
};

// Loads and tokenises (through the cache) a split; max_examples > 0 keeps the first N.
EvalSplit load_eval_split(const Task& task, const std::string& split, const Tokenizer& tokenizer,
                          int64_t max_examples = 0);

struct SplitEvaluation {
  std::map<std::string, double> metrics;  // empty for an unlabelled split
  std::vector<double> predictions;        // one per example, as Task::score takes them
};

// Evaluates `model` on `data` with merged adapters (unmerged again before returning, training mode restored).
SplitEvaluation evaluate_split(TaskModelImpl& model, const Task& task, const EvalSplit& data, const Tokenizer& tokenizer,
                               int64_t batch_size);

// What each example's prediction is scored against: its class index (classification, a generation task's
// gold answer) or its regression target. Empty for a split whose predictions are not per-example outcomes
// (causal-LM blocks) or that has no labels.
std::vector<double> references_of(const Task& task, const EvalSplit& data);

// Per split: the predictions and references of references_of (only splits that have references).
struct SplitPredictions {
  std::vector<double> predictions, references;
};

// Every split's metrics plus, when the task summarises (commonsense's mean over sets), the summary under
// Task::summary_split(). With `kept`, also each labelled split's per-example predictions.
std::map<std::string, std::map<std::string, double>> evaluate_splits(
    TaskModelImpl& model, const Task& task, const std::vector<EvalSplit>& splits, const Tokenizer& tokenizer,
    int64_t batch_size, std::map<std::string, SplitPredictions>* kept = nullptr);

}  // namespace peftlab
