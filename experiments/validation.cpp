#include "experiments/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "core/checksum.h"
#include "core/errors.h"

namespace peftlab {

int64_t validation_count(double validation, size_t n, const std::string& where) {
  int64_t count = 0;
  if (validation >= 1 && std::floor(validation) == validation) count = static_cast<int64_t>(validation);
  else if (validation > 0 && validation < 1) count = std::max<int64_t>(1, std::llround(validation * double(n)));
  else throw InputError(where, fmt::format("eval.validation: a count >= 1 or a fraction in (0, 1), got {}", validation));
  if (count >= static_cast<int64_t>(n))
    throw InputError(where, fmt::format("eval.validation: {} examples held out of a training split of {} leaves none "
                                        "to train on", count, n));
  return count;
}

std::vector<size_t> hold_out_indices(const std::vector<TokenizedExample>& examples, int64_t count, uint64_t seed,
                                     bool stratify) {
  std::mt19937_64 rng(seed);
  // Groups: one per class when stratifying, else one.
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < examples.size(); ++i) groups[stratify ? examples[i].class_label : 0].push_back(i);
  // Each group's share: floor of the proportional count, then one more for the largest remainders (ties
  // to the smaller class index) until the shares add up to `count`.
  const double n = double(examples.size());
  std::vector<std::pair<int64_t, double>> remainders;
  std::map<int64_t, int64_t> share;
  int64_t given = 0;
  for (const auto& [key, members] : groups) {
    const double exact = double(count) * double(members.size()) / n;
    share[key] = static_cast<int64_t>(std::floor(exact));
    given += share[key];
    remainders.emplace_back(key, exact - std::floor(exact));
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t k = 0; given < count; ++k, ++given) ++share[remainders[k % remainders.size()].first];
  std::vector<size_t> out;
  for (auto& [key, members] : groups) {
    std::shuffle(members.begin(), members.end(), rng);
    const int64_t take = std::min<int64_t>(share[key], int64_t(members.size()));
    out.insert(out.end(), members.begin(), members.begin() + take);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string indices_checksum(const std::vector<size_t>& indices) {
  std::string text;
  for (size_t i = 0; i < indices.size(); ++i) text += (i ? "," : "") + std::to_string(indices[i]);
  return sha256_bytes(text);
}

double validation_loss(TaskModelImpl& model, const std::vector<TokenizedExample>& examples, int64_t batch_size,
                       int64_t pad_id, LabelKind label_kind) {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  BatcherOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.pad_id = pad_id;
  options.label_kind = label_kind;
  Batcher batcher(examples, options);
  double sum = 0;
  int64_t count = 0;
  while (auto batch = batcher.next_in_epoch()) {
    auto terms = model.loss_terms(*batch);
    sum += terms.sum.item<double>();
    count += terms.count;
  }
  if (was_training) model.train();
  return count > 0 ? sum / double(count) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace peftlab
