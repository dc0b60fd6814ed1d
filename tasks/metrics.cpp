#include "tasks/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>

#include "core/errors.h"
#include "core/suggest.h"

namespace peftlab {

namespace {

void check_sizes(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  if (a.size() != b.size())
    throw std::invalid_argument(fmt::format("{}: {} predictions for {} references", what, a.size(), b.size()));
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

double accuracy(const std::vector<double>& p, const std::vector<double>& r) {
  check_sizes(p, r, "accuracy");
  if (p.empty()) return kNaN;
  size_t correct = 0;
  for (size_t i = 0; i < p.size(); ++i) correct += p[i] == r[i];
  return double(correct) / double(p.size());
}

double f1_score(const std::vector<double>& p, const std::vector<double>& r, double positive) {
  check_sizes(p, r, "f1");
  double tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    bool predicted = p[i] == positive, actual = r[i] == positive;
    tp += predicted && actual;
    fp += predicted && !actual;
    fn += !predicted && actual;
  }
  return tp == 0 ? 0.0 : 2 * tp / (2 * tp + fp + fn);
}

double macro_f1(const std::vector<double>& p, const std::vector<double>& r) {
  check_sizes(p, r, "macro_f1");
  std::set<double> classes(p.begin(), p.end());
  classes.insert(r.begin(), r.end());
  if (classes.empty()) return kNaN;
  double sum = 0;
  for (double c : classes) sum += f1_score(p, r, c);
  return sum / double(classes.size());
}

double matthews_corrcoef(const std::vector<double>& p, const std::vector<double>& r) {
  check_sizes(p, r, "matthews");
  // From the confusion matrix C: MCC = (c*s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)),
  // c = correct, s = samples, p_k / t_k = times class k was predicted / true.
  std::map<double, double> predicted, actual;
  double correct = 0, samples = double(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    predicted[p[i]] += 1;
    actual[r[i]] += 1;
    correct += p[i] == r[i];
  }
  double pt = 0, pp = 0, tt = 0;
  for (const auto& [k, n] : predicted) {
    pp += n * n;
    auto it = actual.find(k);
    if (it != actual.end()) pt += n * it->second;
  }
  for (const auto& [k, n] : actual) tt += n * n;
  double denominator = std::sqrt((samples * samples - pp) * (samples * samples - tt));
  return denominator == 0 ? 0.0 : (correct * samples - pt) / denominator;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check_sizes(x, y, "pearson");
  if (x.size() < 2) return kNaN;
  const double n = double(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return kNaN;
  return sxy / std::sqrt(sxx * syy);
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    double rank = (double(i) + double(j)) / 2.0 + 1.0;  // the mean of ranks i+1 .. j+1
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check_sizes(x, y, "spearman");
  return pearson(average_ranks(x), average_ranks(y));
}

double mean_squared_error(const std::vector<double>& p, const std::vector<double>& r) {
  check_sizes(p, r, "mse");
  if (p.empty()) return kNaN;
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += (p[i] - r[i]) * (p[i] - r[i]);
  return sum / double(p.size());
}

double no_match_rate(const std::vector<double>& p, const std::vector<double>& r) {
  check_sizes(p, r, "no_match_rate");
  if (p.empty()) return kNaN;
  return double(std::count(p.begin(), p.end(), -1.0)) / double(p.size());
}

double perplexity(double nll_sum, double token_count) {
  return token_count > 0 ? std::exp(nll_sum / token_count) : kNaN;
}

double bits_per_byte(double nll_sum, double byte_count) {
  return byte_count > 0 ? nll_sum / (std::log(2.0) * byte_count) : kNaN;
}

namespace {

const std::map<std::string, Metric>& metric_table() {
  static const std::map<std::string, Metric> table = {
      {"accuracy", {"accuracy", accuracy, true}},
      {"acc", {"acc", accuracy, true}},  // lm-evaluation-harness' name for accuracy
      {"f1", {"f1", [](const auto& p, const auto& r) { return f1_score(p, r, 1); }, true}},
      {"macro_f1", {"macro_f1", macro_f1, true}},
      {"matthews", {"matthews", matthews_corrcoef, true}},
      {"pearson", {"pearson", pearson, true}},
      {"spearman", {"spearman", spearman, true}},
      {"mse", {"mse", mean_squared_error, false}},
      {"no_match_rate", {"no_match_rate", no_match_rate, false}},
  };
  return table;
}

}  // namespace

std::vector<std::string> metric_names() {
  std::vector<std::string> names;
  for (const auto& [name, metric] : metric_table()) names.push_back(name);
  return names;
}

Metric metric_by_name(const std::string& name, const std::string& file, long line) {
  auto it = metric_table().find(name);
  if (it == metric_table().end()) throw InputError(file, unknown_name_message("metric", name, metric_names()), line);
  return it->second;
}

}  // namespace peftlab
