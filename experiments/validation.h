// The validation split: a seeded hold-out carved from the training split (eval.validation), the only data
// that selects anything in a run that has one (the best checkpoint, early stopping), so that the reported
// splits are read once, at the end. Its measure is the training objective's mean loss on the held-out
// examples (lower is better; the selection LLM-Adapters and DoRA used), the same for every task kind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "experiments/task_model.h"

namespace peftlab {

// eval.validation as a number of examples: an integer >= 1 is a count, a number in (0, 1) a fraction of `n`
// (rounded, at least 1). The training split must keep at least one example; throws InputError naming `where`.
int64_t validation_count(double validation, size_t n, const std::string& where);

// `count` distinct indices of `examples`, drawn with `seed` alone (the same hold-out for every method and
// run seed of a spec). With `stratify` (classification), each class gets its share of `count` in proportion
// to its frequency (largest remainders), so the hold-out has the training split's label distribution.
// Sorted ascending.
std::vector<size_t> hold_out_indices(const std::vector<TokenizedExample>& examples, int64_t count, uint64_t seed,
                                     bool stratify);

// SHA-256 of the held-out indices as text ("3,17,42"), recorded in the run file to identify the hold-out.
std::string indices_checksum(const std::vector<size_t>& indices);

// The training loss (sum over batches / count, as training computes it) on `examples`, in evaluation mode
// without gradients; the model's mode is restored.
double validation_loss(TaskModelImpl& model, const std::vector<TokenizedExample>& examples, int64_t batch_size,
                       int64_t pad_id, LabelKind label_kind);

}  // namespace peftlab
