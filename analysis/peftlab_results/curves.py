"""Training curves: per task, the training loss and the evaluation headline metric against the step, a line
per method (mean over seeds) with a min-max band over seeds."""
import math
import os
from collections import defaultdict

import numpy as np

from .figures import pyplot, safe_name, write_json
from .order import label_order
from .tables import Table


def _series(arrays, x_name, y_name):
    if x_name not in arrays or y_name not in arrays:
        return {}
    xs, ys = arrays[x_name], arrays[y_name]
    return {int(x): float(y) for x, y in zip(xs, ys) if math.isfinite(float(y))}


def curve_band(series_list):
    """Mean and min/max over seeds at every step any seed logged."""
    steps = sorted({s for series in series_list for s in series})
    out = {"step": [], "mean": [], "min": [], "max": [], "n": []}
    for s in steps:
        values = [series[s] for series in series_list if s in series]
        out["step"].append(s)
        out["mean"].append(float(np.mean(values)))
        out["min"].append(float(np.min(values)))
        out["max"].append(float(np.max(values)))
        out["n"].append(len(values))
    return out


def plot_curves(runs, out_dir, fmt, overrides, split=None):
    plt = pyplot()
    written = []
    for task in sorted({r.task for r in runs}):
        task_runs = [r for r in runs if r.task == task]
        metric = overrides.get(task) or Table._common_metric(task_runs, task)
        by_label = defaultdict(list)
        for r in task_runs:
            by_label[r.label].append(r)
        fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(10, 3.8))
        record = {"task": task, "metric": metric, "band": "min-max over seeds", "methods": []}
        splits = set()
        for i, label in enumerate(label_order(task_runs)):
            colour = plt.get_cmap("tab10")(i % 10)
            group = by_label[label]
            loss = curve_band([_series(r.train, "step", "loss") for r in group])
            evals = []
            for r in group:
                chosen = r.pick_split(list(r.eval), split)
                splits.add(chosen)
                evals.append(_series(r.eval.get(chosen, {}), "step", metric) if chosen else {})
            ev = curve_band(evals)
            for ax, band in ((ax_loss, loss), (ax_eval, ev)):
                if band["step"]:
                    few = len(band["step"]) <= 30  # sparse evaluations: mark where they were taken
                    ax.plot(band["step"], band["mean"], color=colour, label=f"{label} (n={len(group)})",
                            marker="o" if few else None, markersize=3)
                    ax.fill_between(band["step"], band["min"], band["max"], color=colour, alpha=0.2, linewidth=0)
            record["methods"].append({"method": label, "runs": len(group), "loss": loss, "eval": ev})
        ax_loss.set(xlabel="step", ylabel="training loss", title=f"{task}: training loss")
        where = "/".join(sorted(s for s in splits if s)) or "eval"
        ax_eval.set(xlabel="step", ylabel=metric or "metric", title=f"{task}: {where} {metric or '(none)'}")
        for ax in (ax_loss, ax_eval):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.tight_layout()
        stem = os.path.join(out_dir, f"curves_{safe_name(task)}")
        fig.savefig(f"{stem}.{fmt}", bbox_inches="tight")
        plt.close(fig)
        write_json(stem + ".json", record)
        written.append(f"{stem}.{fmt}")
    return written
