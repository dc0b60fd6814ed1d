#!/usr/bin/env python3
"""analysis/peftlab_results/paired_stats.py against independent routes: the metrics against closed forms
written out here, the paired bootstrap interval against the normal approximation it converges to, and the
pairing itself (shared examples make a difference of correlated methods tight where an unpaired comparison
would not be)."""
import math
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "analysis"))
from peftlab_results import paired_stats as ps  # noqa: E402


def pearson_by_sums(x, y):
    """Pearson r written out in plain Python: covariance over the product of the standard deviations."""
    x, y = [float(v) for v in x], [float(v) for v in y]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def average_ranks(values):
    """1-based ranks, tied values sharing the mean of their ranks."""
    values = [float(v) for v in values]
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


class Metrics(unittest.TestCase):
    def test_against_closed_forms(self):
        rng = np.random.default_rng(1)
        r = rng.integers(0, 2, 300).astype(float)
        p = np.where(rng.random(300) < 0.8, r, 1 - r)
        tp = np.sum((p == 1) & (r == 1)); tn = np.sum((p == 0) & (r == 0))
        fp = np.sum((p == 1) & (r == 0)); fn = np.sum((p == 0) & (r == 1))
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["accuracy"](p, r), (tp + tn) / 300, places=12)
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["f1"](p, r), tp / (tp + 0.5 * (fp + fn)), places=12)
        mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["matthews"](p, r), mcc, places=12)
        x, y = rng.normal(size=200), rng.normal(size=200)
        y = 0.6 * x + y
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["pearson"](x, y), pearson_by_sums(x, y), places=10)
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["spearman"](x, y),
                               pearson_by_sums(average_ranks(x), average_ranks(y)), places=10)
        # Ties (rounded values) get the mean of their ranks.
        xt, yt = np.round(x), np.round(y)
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["spearman"](xt, yt),
                               pearson_by_sums(average_ranks(xt), average_ranks(yt)), places=10)
        # A constant side has no correlation: 0, not NaN.
        self.assertEqual(ps.FROM_PREDICTIONS["pearson"](np.ones(5), x[:5]), 0.0)
        self.assertEqual(ps.FROM_PREDICTIONS["spearman"](x[:5], np.ones(5)), 0.0)
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["mse"](x, y), float(np.mean((x - y) ** 2)), places=12)
        self.assertAlmostEqual(ps.FROM_PREDICTIONS["no_match_rate"](np.array([-1.0, 0, 2, -1]), np.zeros(4)), 0.5)


def observations(correct_a, correct_b):
    """Two methods' per-example correctness as class predictions against all-zero references."""
    refs = np.zeros(len(correct_a))
    a = ps.Observation(np.mean(correct_a), np.where(correct_a, 0.0, 1.0), refs)
    b = ps.Observation(np.mean(correct_b), np.where(correct_b, 0.0, 1.0), refs)
    return a, b


class Bootstrap(unittest.TestCase):
    def test_one_seed_matches_the_normal_interval_of_a_paired_mean(self):
        rng = np.random.default_rng(7)
        n = 4000
        base = rng.random(n) < 0.70
        # The method agrees with the baseline on most examples and fixes some of its errors.
        other = np.where(rng.random(n) < 0.9, base, rng.random(n) < 0.8)
        a, b = observations(base, other)
        d = ps.paired_difference({0: a}, {0: b}, "accuracy")
        per_example = other.astype(float) - base.astype(float)
        half = 1.959964 * per_example.std(ddof=1) / math.sqrt(n)
        self.assertEqual(d.level, "seeds+examples")
        self.assertAlmostEqual(d.diff, per_example.mean(), places=12)
        self.assertAlmostEqual(d.low, per_example.mean() - half, delta=0.15 * half)
        self.assertAlmostEqual(d.high, per_example.mean() + half, delta=0.15 * half)

    def test_pairing_is_what_makes_it_tight(self):
        rng = np.random.default_rng(3)
        n = 1000
        base = rng.random(n) < 0.6
        other = base.copy()
        flip = rng.choice(np.flatnonzero(~base), 30, replace=False)  # fixes 30 errors, breaks nothing
        other[flip] = True
        a, b = observations(base, other)
        d = ps.paired_difference({0: a}, {0: b}, "accuracy")
        self.assertAlmostEqual(d.diff, 0.03, places=12)
        self.assertTrue(d.excludes_zero)
        # An unpaired normal interval of two independent proportions would include zero.
        unpaired = 1.96 * math.sqrt(0.6 * 0.4 / n + 0.63 * 0.37 / n)
        self.assertGreater(unpaired, 0.03)

    def test_seeds_only_without_predictions(self):
        base = {s: ps.Observation(v) for s, v in enumerate([0.80, 0.82, 0.81])}
        other = {s: ps.Observation(v) for s, v in enumerate([0.83, 0.84, 0.85])}
        d = ps.paired_difference(base, other, "accuracy")
        self.assertEqual(d.level, "seeds")
        self.assertAlmostEqual(d.diff, np.mean([0.03, 0.02, 0.04]), places=12)
        # Resampling three differences: the interval lies within their range.
        self.assertGreaterEqual(d.low, 0.02 - 1e-12)
        self.assertLessEqual(d.high, 0.04 + 1e-12)
        self.assertTrue(d.excludes_zero)

    def test_only_shared_seeds_pair_and_one_seed_alone_has_no_interval(self):
        base = {0: ps.Observation(0.5), 1: ps.Observation(0.6)}
        other = {1: ps.Observation(0.7), 2: ps.Observation(0.9)}
        d = ps.paired_difference(base, other, "accuracy")
        self.assertEqual((d.seeds, d.level, d.low), (1, "none", None))
        self.assertAlmostEqual(d.diff, 0.1, places=12)
        self.assertIsNone(ps.paired_difference({0: ps.Observation(1)}, {1: ps.Observation(1)}, "accuracy"))

    def test_deterministic(self):
        rng = np.random.default_rng(5)
        a, b = observations(rng.random(200) < 0.5, rng.random(200) < 0.6)
        d1 = ps.paired_difference({0: a}, {0: b}, "accuracy")
        d2 = ps.paired_difference({0: a}, {0: b}, "accuracy")
        self.assertEqual((d1.low, d1.high), (d2.low, d2.high))


if __name__ == "__main__":
    unittest.main()
