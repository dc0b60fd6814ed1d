"""What the figures share: pyplot set up for files, which runs are plotted, file names and the JSON record
written beside each figure (exactly the plotted data)."""
import json
import sys

from .tuning import choose_tuned


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.hashsalt": "peftlab", "figure.dpi": 100, "font.size": 9})
    return plt


def plot_runs(runs, include_incomplete):
    """The runs a figure shows: completed ones (all with include_incomplete) and, of a tuned sweep, only each
    method's chosen value (as `table` reports it; the choice is written to stderr)."""
    kept, skipped = [], []
    for run in runs:
        (kept if include_incomplete or run.status == "completed" else skipped).append(run)
    for run in skipped:
        sys.stderr.write(f"warning: {run.path}: left out of the figures: status {run.status}\n")
    kept, chosen, _ = choose_tuned(kept)
    for (task, label), text in sorted(chosen.items()):
        sys.stderr.write(f"figures: {task} / {label} at {text} (chosen on its tuning split)\n")
    return kept


def safe_name(name):
    """A task or module name as part of a file name."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def write_json(path, record):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, allow_nan=False, default=float)
