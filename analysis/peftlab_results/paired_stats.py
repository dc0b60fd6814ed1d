"""Paired comparisons of a method against a baseline, for `peftlab table --baseline`.

Two runs are paired when they share the task and the seed (the seed fixes the data order, the dropout masks
and, for every method, the initialisation of what the methods have in common). For each shared seed the
difference is method minus baseline in the headline metric; the point estimate is the mean over shared seeds.

The 95 % interval is a two-level percentile bootstrap: each resample draws the seeds with replacement and,
within each drawn seed where both run files keep their per-example predictions of the split, the evaluation
examples with replacement (the same examples for both methods, which is what makes it paired), and
recomputes the metric from the predictions. Where predictions are missing (older run files, metrics that
are not a function of per-example predictions such as perplexity), only seeds are resampled, and the
interval says so. With one shared seed and no predictions there is no interval.

Resampling uses a fixed generator seed, so the same run files always give the same intervals.
"""
import numpy as np

BOOTSTRAP_RESAMPLES = 2000
GENERATOR_SEED = 20240601


def _accuracy(p, r):
    return float(np.mean(p == r))


# F1 and the Matthews correlation of binary predictions (class 1 positive) are written out: SciPy has neither.
def _f1(p, r):
    tp = np.sum((p == 1) & (r == 1))
    fp = np.sum((p == 1) & (r != 1))
    fn = np.sum((p != 1) & (r == 1))
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn > 0 else 0.0


def _matthews(p, r):
    tp = float(np.sum((p == 1) & (r == 1)))
    tn = float(np.sum((p != 1) & (r != 1)))
    fp = float(np.sum((p == 1) & (r != 1)))
    fn = float(np.sum((p != 1) & (r == 1)))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / den) if den > 0 else 0.0


# A resample whose predictions or references are all equal has no defined correlation: it counts as 0 so that
# every resample stays finite (SciPy would give NaN and a warning). SciPy is imported only here: tables without
# a paired comparison of a correlation metric do not need it.
def _pearson(p, r):
    if np.std(p) == 0 or np.std(r) == 0:
        return 0.0
    from scipy.stats import pearsonr
    return float(pearsonr(p, r)[0])


def _spearman(p, r):
    if np.std(p) == 0 or np.std(r) == 0:
        return 0.0
    from scipy.stats import spearmanr
    return float(spearmanr(p, r)[0])


def _mse(p, r):
    return float(np.mean((p - r) ** 2))


def _no_match_rate(p, r):
    return float(np.mean(p < 0))


# Metrics that are a function of (prediction, reference) pairs, as the C++ side defines them (tasks/metrics.cpp):
# class indices for accuracy, f1 (class 1 positive), matthews; values for pearson, spearman, mse; -1 marks a
# generated answer with no match.
FROM_PREDICTIONS = {
    "accuracy": _accuracy,
    "f1": _f1,
    "matthews": _matthews,
    "pearson": _pearson,
    "spearman": _spearman,
    "mse": _mse,
    "no_match_rate": _no_match_rate,
}


class Observation:
    """One run's headline value on one split, with its per-example predictions and references when kept."""

    def __init__(self, value, predictions=None, references=None):
        self.value = float(value)
        self.predictions = None if predictions is None else np.asarray(predictions, dtype=np.float64)
        self.references = None if references is None else np.asarray(references, dtype=np.float64)


class PairedDifference:
    def __init__(self, diff, low, high, seeds, level):
        self.diff = diff      # mean over shared seeds of method - baseline
        self.low = low        # 95 % interval, None when there is none
        self.high = high
        self.seeds = seeds    # number of shared seeds
        self.level = level    # "seeds+examples", "seeds" or "none"

    @property
    def excludes_zero(self):
        return self.low is not None and (self.low > 0 or self.high < 0)


def _examples_comparable(base, other, metric):
    return (metric in FROM_PREDICTIONS and base.predictions is not None and other.predictions is not None
            and base.references is not None and other.references is not None
            and len(base.predictions) == len(other.predictions) == len(base.references) > 0
            and np.array_equal(base.references, other.references))


def paired_difference(baseline, method, metric):
    """baseline, method: {seed: Observation}. Returns a PairedDifference, or None without a shared seed."""
    shared = sorted(set(baseline) & set(method))
    if not shared:
        return None
    diffs = np.array([method[s].value - baseline[s].value for s in shared])
    point = float(np.mean(diffs))
    by_examples = all(_examples_comparable(baseline[s], method[s], metric) for s in shared)
    if not by_examples and len(shared) < 2:
        return PairedDifference(point, None, None, len(shared), "none")
    rng = np.random.Generator(np.random.PCG64(GENERATOR_SEED))
    stats = np.empty(BOOTSTRAP_RESAMPLES)
    if by_examples:
        score = FROM_PREDICTIONS[metric]
        for b in range(BOOTSTRAP_RESAMPLES):
            total = 0.0
            for s in rng.choice(shared, size=len(shared), replace=True):
                base, other = baseline[s], method[s]
                idx = rng.integers(0, len(base.references), size=len(base.references))
                refs = base.references[idx]
                total += score(other.predictions[idx], refs) - score(base.predictions[idx], refs)
            stats[b] = total / len(shared)
    else:
        picks = rng.integers(0, len(shared), size=(BOOTSTRAP_RESAMPLES, len(shared)))
        stats = diffs[picks].mean(axis=1)
    low, high = np.percentile(stats, [2.5, 97.5])
    return PairedDifference(point, float(low), float(high), len(shared), "seeds+examples" if by_examples else "seeds")
