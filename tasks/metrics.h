// Evaluation metrics, lm-evaluation-harness style: a metric is a name, an aggregate over the predictions and
// references of a whole split, and whether higher is better. Predictions and references are doubles: class
// indices for classification (and for commonsense answers, -1 meaning "no answer found"), floats for
// regression.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace peftlab {

using MetricFn = std::function<double(const std::vector<double>& predictions, const std::vector<double>& references)>;

struct Metric {
  std::string name;
  MetricFn aggregate;
  bool higher_is_better = true;
};

// Fraction of predictions equal to their reference.
double accuracy(const std::vector<double>& predictions, const std::vector<double>& references);
// F1 of the class `positive` (GLUE's MRPC and QQP: positive class 1). 0 when there is no true positive.
double f1_score(const std::vector<double>& predictions, const std::vector<double>& references, double positive = 1);
// Unweighted mean of the per-class F1 over the classes present in predictions or references.
double macro_f1(const std::vector<double>& predictions, const std::vector<double>& references);
// Matthews correlation coefficient, multi-class form (Gorodkin 2004, as scikit-learn computes it); 0 when
// it is undefined (a constant prediction or reference), as scikit-learn returns.
double matthews_corrcoef(const std::vector<double>& predictions, const std::vector<double>& references);
// Pearson correlation; NaN when either side is constant.
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// Spearman correlation: Pearson of the ranks, ties given their average rank (as scipy.stats.spearmanr).
double spearman(const std::vector<double>& x, const std::vector<double>& y);
// Ranks 1..n, ties averaged.
std::vector<double> average_ranks(const std::vector<double>& values);
double mean_squared_error(const std::vector<double>& predictions, const std::vector<double>& references);
// Fraction of predictions that are -1 (generation protocol: no answer pattern found in the reply).
double no_match_rate(const std::vector<double>& predictions, const std::vector<double>& references);

// Causal LM, from the summed negative log-likelihood (nats) over the predicted tokens:
// perplexity = exp(nll / tokens); bits per byte = nll / (ln 2 * bytes of the evaluated text, UTF-8).
double perplexity(double nll_sum, double token_count);
double bits_per_byte(double nll_sum, double byte_count);

// A metric by name: accuracy (also `acc`), f1, macro_f1, matthews, pearson, spearman, mse, no_match_rate. Throws
// InputError(file, ..., line) with a did-you-mean for an unknown name.
Metric metric_by_name(const std::string& name, const std::string& file = "", long line = 0);
std::vector<std::string> metric_names();

}  // namespace peftlab
