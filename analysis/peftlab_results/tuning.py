"""Tuned sweeps: for each task and method, the value of the tuned axes that the runs' selection split chose."""
import json
import math
from collections import defaultdict

import numpy as np

from .errors import InputError


def _value_order(axes_json):
    """Sort key of a tuned value: its axes with numbers compared as numbers (1.8e-2 after 2.0e-3)."""
    def key(value):
        try:
            return (0, float(value), "")
        except (TypeError, ValueError):
            return (1, 0.0, str(value))
    return tuple((name, key(value)) for name, value in sorted(json.loads(axes_json).items()))


def _tuned_text(axes):
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(axes.items()))


def choose_tuned(runs):
    """For runs of tuned sweeps: per (task, method label), the value of the tuned axes whose completed runs
    score best on the tuning's split and metric (mean over seeds; the metric's recorded direction, loss lower;
    ties to the first value in numeric order). Returns (the runs to report: untuned runs and
    the chosen value's runs, {(task, label): chosen text}, [(task, label, text, mean, n) of every candidate])."""
    groups = defaultdict(lambda: defaultdict(list))  # (task, label) -> axes text -> runs
    kept = []
    for run in runs:
        if run.tuning is None:
            kept.append(run)
        else:
            groups[(run.task, run.label)][json.dumps(run.tuning["axes"], sort_keys=True)].append(run)
    chosen, candidates = {}, []
    for key, by_value in sorted(groups.items()):
        scored = []
        for axes_json, members in sorted(by_value.items(), key=lambda item: _value_order(item[0])):
            tuning = members[0].tuning
            split, metric = tuning["split"], tuning["metric"]
            values = [r.final.get(split, {}).get(metric) for r in members if r.status == "completed"]
            values = [v for v in values if v is not None and math.isfinite(v)]
            mean = float(np.mean(values)) if values else None
            direction = "lower" if metric == "loss" else members[0].directions.get(metric)
            if direction is None:
                raise InputError(members[0].path, f"tuning metric '{metric}' has no recorded direction")
            text = _tuned_text(json.loads(axes_json))
            candidates.append((key[0], key[1], text, mean, len(values), split, metric))
            if mean is not None:
                scored.append((mean if direction == "lower" else -mean, text, members))
        if not scored:
            continue
        scored.sort(key=lambda item: item[0])
        best = scored[0]
        chosen[key] = best[1]
        kept += best[2]
    return kept, chosen, candidates
