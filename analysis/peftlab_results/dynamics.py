"""Magnitude vs direction dynamics (the DoRA paper's Figure 2): per task, module type and dimension, the
change in magnitude (dM) against the change in direction (dD) of every layer at the plotted steps, one
panel per method with its least-squares line."""
import math
import os
from collections import OrderedDict, defaultdict

import numpy as np

from .errors import InputError
from .figures import pyplot, safe_name, write_json
from .formatting import stat_text
from .order import label_order


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]


def module_type(layer):
    return layer.rsplit(".", 1)[-1]


def layer_index(layer):
    parts = layer.split(".")
    for a, b in zip(parts, parts[1:]):
        if a in ("layers", "layer", "h", "blocks") and b.isdigit():
            return int(b)
    return None

def dynamics_data(runs):
    """{(task, module, dim): {label: {"runs": n, "points": [(layer, step, dD, dM, n_seeds)]}}}, averaging each
    (layer, step) over the seeds that recorded it."""
    order = label_order(runs)
    acc = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))  # key -> label -> (layer, step) -> [(dD, dM)]
    nruns = defaultdict(set)
    for run in runs:
        for layer, data in run.decomposition.items():
            steps = data.get("step")
            if steps is None:
                continue
            for dim in ("row", "col"):
                dM, dD = data.get("dM_" + dim), data.get("dD_" + dim)
                if dM is None or dD is None:
                    continue
                key = (run.task, module_type(layer), dim)
                nruns[(key, run.label)].add(run.path)
                n = min(len(steps), len(dM), len(dD))
                for i in range(n):
                    acc[key][run.label][(layer, int(steps[i]))].append((float(dD[i]), float(dM[i])))
    out = {}
    for key in sorted(acc, key=lambda k: (k[0], k[1], k[2] != "row")):  # rows before columns
        panels = OrderedDict()
        for label in sorted(acc[key], key=order.index):
            points = []
            for (layer, step), pairs in sorted(acc[key][label].items(),
                                               key=lambda kv: (layer_index(kv[0][0]) or 0, kv[0][0], kv[0][1])):
                dD = float(np.mean([p[0] for p in pairs]))
                dM = float(np.mean([p[1] for p in pairs]))
                points.append({"layer": layer, "step": step, "dD": dD, "dM": dM, "n_seeds": len(pairs)})
            panels[label] = {"runs": len(nruns[(key, label)]), "points": points}
        out[key] = panels
    return out


def fit_line(xs, ys):
    """Least-squares slope and intercept of y on x, and Pearson r; None where undefined."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    if len(xs) < 2 or np.ptp(xs) == 0:
        return None, None, None
    slope, intercept = np.polyfit(xs, ys, 1)
    r = None if np.ptp(ys) == 0 else float(np.corrcoef(xs, ys)[0, 1])
    return float(slope), float(intercept), r


def plotted_steps(recorded):
    """The steps a dynamics figure shows, out of the recorded ones: every step after 0 (at step 0 the weight is
    W0, so every layer sits at (0, 0) and would only pull the fitted line there), thinned to at most
    len(MARKERS) steps so that each step keeps a marker of its own: every k-th step counted back from the last,
    with k as small as that allows (e.g. steps 20, 40, ..., 400 become 40, 80, ..., 400)."""
    steps = sorted({int(s) for s in recorded if s > 0})
    if len(steps) <= len(MARKERS):
        return steps
    k = math.ceil(len(steps) / len(MARKERS))
    return sorted(steps[::-1][::k])


def plot_dynamics(runs, out_dir, fmt):
    plt = pyplot()
    written = []
    data = dynamics_data(runs)
    if not data:
        raise InputError(", ".join(sorted({r.path for r in runs})) or "runs",
                         "no decomposition statistics recorded (record.decomposition_every)")
    for (task, module, dim), panels in data.items():
        labels = list(panels)
        ncols = 2 if len(labels) == 4 else min(len(labels), 3)
        nrows = math.ceil(len(labels) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
        layers = sorted({p["layer"] for panel in panels.values() for p in panel["points"]},
                        key=lambda l: (layer_index(l) or 0, l))
        recorded = sorted({p["step"] for panel in panels.values() for p in panel["points"]})
        steps = plotted_steps(recorded)
        cmap = plt.get_cmap("viridis" if len(layers) > 10 else "tab10")
        colour = {l: cmap(i / max(1, len(layers) - 1) if len(layers) > 10 else i) for i, l in enumerate(layers)}
        marker = {s: MARKERS[i] for i, s in enumerate(steps)}
        record = {"task": task, "module": module, "dimension": dim, "x": "dD_" + dim, "y": "dM_" + dim,
                  "steps_recorded": recorded, "steps": steps, "panels": []}
        for index, label in enumerate(labels):
            ax = axes[index // ncols][index % ncols]
            points = [p for p in panels[label]["points"] if p["step"] in marker]
            for layer in layers:  # each layer's path through the steps, faint, under the markers
                path = sorted((p for p in points if p["layer"] == layer), key=lambda p: p["step"])
                ax.plot([p["dD"] for p in path], [p["dM"] for p in path], color=colour[layer], linewidth=0.8,
                        alpha=0.35, zorder=1)
            for p in points:
                ax.scatter(p["dD"], p["dM"], color=colour[p["layer"]], marker=marker[p["step"]], s=28,
                           edgecolors="black", linewidths=0.3, zorder=3)
            xs, ys = [p["dD"] for p in points], [p["dM"] for p in points]
            slope, intercept, r = fit_line(xs, ys)
            if slope is not None:
                grid = np.linspace(min(xs), max(xs), 2)
                ax.plot(grid, intercept + slope * grid, color="grey", linestyle="--", linewidth=1, zorder=2)
            seeds = panels[label]["runs"]
            ax.set_title(f"{label} ({seeds} seed{'s' if seeds != 1 else ''})\n"
                         f"slope {stat_text(slope, '.3g')}, r = {stat_text(r, '.3f')}, {len(points)} points",
                         fontsize=9)
            ax.set_xlabel(f"ΔD ({dim}s)")
            ax.set_ylabel(f"ΔM ({dim}s)")
            ax.ticklabel_format(style="sci", scilimits=(-3, 3), axis="both")
            ax.grid(alpha=0.3)
            record["panels"].append({"method": label, "runs": seeds, "slope": slope,
                                     "intercept": intercept, "pearson_r": r, "points": points})
        for index in range(len(labels), nrows * ncols):
            axes[index // ncols][index % ncols].axis("off")
        handles = [plt.Line2D([], [], color=colour[l], marker="o", linestyle="", label=_short_layer(l)) for l in layers]
        handles += [plt.Line2D([], [], color="black", marker=marker[s], linestyle="", markerfacecolor="none",
                               label=f"step {s}") for s in steps]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
        fig.suptitle(f"{task}: {module}, {dim}-wise magnitude vs direction change")
        fig.tight_layout()
        stem = os.path.join(out_dir, f"dynamics_{safe_name(task)}_{safe_name(module)}_{dim}")
        fig.savefig(f"{stem}.{fmt}", bbox_inches="tight")
        plt.close(fig)
        write_json(stem + ".json", record)
        written.append(f"{stem}.{fmt}")
    return written


def _short_layer(layer):
    index = layer_index(layer)
    return f"layer {index}" if index is not None else layer
