#!/usr/bin/env python3
"""peftlab analysis: results tables, decomposition-dynamics and training-curve figures, and a one-page
HTML report, all read from the HDF5 run files (schema: docs/run-file.md). Driven by `peftlab table|plot|report`.

Errors in the input print one line `error: <file>: <what>` and exit with status 2.
"""
import argparse
import base64
import csv
import hashlib
import io
import json
import math
import os
import re
import sys
import tempfile
from collections import OrderedDict, defaultdict

# The writer holds no HDF5 file lock (docs/run-file.md); skip locking here too so a live run can be read.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paired_stats  # noqa: E402

try:
    import h5py  # noqa: E402
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("error: python3: h5py is missing (Debian: apt-get install python3-h5py)\n")
    sys.exit(2)

RUN_FILE = "run.h5"
SPLIT_PREFERENCE = ("dev", "validation", "test")


class InputError(Exception):
    def __init__(self, path, what):
        super().__init__(f"{path}: {what}")


# ---------------------------------------------------------------- reading run files


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


RUN_FILE_HEADER_BYTES = 512
RUN_FILE_MAGIC = b"peftlab run file\n"


def run_file_header(data):
    """The header peftlab writes before a run file's HDF5 bytes (core/recorder.cpp): SHA-256 and length."""
    header = RUN_FILE_MAGIC + b"sha256 " + hashlib.sha256(data).hexdigest().encode() + b"\n" + \
        b"bytes " + str(len(data)).encode() + b"\n"
    return header.ljust(RUN_FILE_HEADER_BYTES, b"\0")


def verify_run_file(path):
    """Checks the header's checksum before HDF5 parses anything: HDF5 can loop for ever on damaged bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(path, f"cannot open the run file: {e.strerror}")
    if not data.startswith(RUN_FILE_MAGIC):
        if data.startswith(b"\x89HDF\r\n\x1a\n"):
            raise InputError(path, "unreadable run file: no checksummed header (written by an older peftlab?); "
                                   "run it again to rewrite it")
        raise InputError(path, "unreadable run file: it starts with neither a peftlab run-file header nor HDF5's "
                               "signature")
    if len(data) < RUN_FILE_HEADER_BYTES:
        raise InputError(path, f"damaged run file: {len(data)} bytes, shorter than its "
                               f"{RUN_FILE_HEADER_BYTES}-byte header")
    if data[:RUN_FILE_HEADER_BYTES] != run_file_header(data[RUN_FILE_HEADER_BYTES:]):
        raise InputError(path, "damaged run file: its contents do not match the checksum in its header")


class Run:
    """One run file, read completely (run files are small)."""

    def __init__(self, path):
        self.path = path
        verify_run_file(path)
        try:
            with h5py.File(path, "r") as f:
                self.attrs = {k: (_text(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
                if "schema_version" not in self.attrs:
                    raise InputError(path, "not a peftlab run file (no schema_version attribute)")
                self.train = self._group_arrays(f, "train")
                self.eval = {s: self._group_arrays(f, "eval/" + s) for s in self._children(f, "eval")}
                self.decomposition = {l: self._group_arrays(f, "decomposition/" + l)
                                      for l in self._children(f, "decomposition")}
                self.final = {s: {k: float(v) for k, v in f["final/" + s].attrs.items()}
                              for s in self._children(f, "final")}
                # Per-example predictions of the final evaluation, where the run kept them (split -> (p, r)).
                self.final_predictions = {}
                for s in self._children(f, "final_predictions"):
                    arrays = self._group_arrays(f, "final_predictions/" + s)
                    if set(arrays) != {"prediction", "reference"} or \
                            len(arrays["prediction"]) != len(arrays["reference"]):
                        raise InputError(path, f"final_predictions/{s}: expected prediction and reference of one length")
                    self.final_predictions[s] = (arrays["prediction"], arrays["reference"])
        except InputError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise InputError(path, f"unreadable run file: {e}")
        self.status = self.attr("status", "unknown")
        self.method = self.attr("method", "?")
        self.label = self.attr("method_label", "") or self.method
        self.task = self.attr("task", "?")
        self.seed = self.attr("seed", None)
        self.metric = self.attr("headline_metric", "")
        # Whether higher or lower is better, per metric, as the task declared it ({"perplexity": "lower"}).
        try:
            self.directions = json.loads(self.attr("metric_directions", "{}"))
        except ValueError as e:
            raise InputError(path, f"attribute metric_directions is not JSON: {e}")
        if not isinstance(self.directions, dict) or \
                any(v not in ("higher", "lower") for v in self.directions.values()):
            raise InputError(path, "attribute metric_directions: expected {metric: \"higher\" | \"lower\"}")
        # Tuned sweep axes: {"axes": {"train.lr": "3e-4"}, "split": "validation", "metric": "loss"}, or None.
        try:
            self.tuning = json.loads(self.attr("tuning", "")) if self.attr("tuning", "") else None
        except ValueError as e:
            raise InputError(path, f"attribute tuning is not JSON: {e}")
        if self.tuning is not None and (not isinstance(self.tuning, dict) or
                                        not isinstance(self.tuning.get("axes"), dict) or
                                        not self.tuning.get("split") or not self.tuning.get("metric")):
            raise InputError(path, "attribute tuning: expected {axes: {key: value}, split, metric}")

    def attr(self, key, default):
        value = self.attrs.get(key, default)
        if isinstance(value, np.generic):
            value = value.item()
        return value

    @staticmethod
    def _children(f, group):
        return sorted(f[group].keys()) if group in f else []

    def _group_arrays(self, f, group):
        """The group's datasets. Training and evaluation rows are 1-D (one value per logged step); the
        decomposition group's magnitude matrices (m_row, m_col) are 2-D."""
        if group not in f:
            return {}
        out = {}
        for name, ds in f[group].items():
            if not isinstance(ds, h5py.Dataset):
                continue
            array = np.asarray(ds[()])
            matrix = group.startswith("decomposition/") and name in ("m_row", "m_col")
            if array.ndim != (2 if matrix else 1):
                raise InputError(self.path, f"{group}/{name}: expected a {2 if matrix else 1}-D dataset, "
                                            f"got shape {tuple(array.shape)}")
            if not matrix and not np.issubdtype(array.dtype, np.number):
                raise InputError(self.path, f"{group}/{name}: expected numbers, got {array.dtype}")
            out[name] = array
        return out

    def pick_split(self, splits, preferred=None):
        """The split a headline number comes from: asked for, named by the run, else dev/validation/test."""
        for split in (preferred, self.attr("headline_split", None)) + SPLIT_PREFERENCE:
            if split and split in splits:
                return split
        return sorted(splits)[0] if splits else None

    def observation(self, metric, split=None):
        """The headline value as a paired_stats.Observation, with the split's predictions when kept."""
        value, why = self.headline(metric, split)
        if why:
            return None
        kept = self.final_predictions.get(self.pick_split(list(self.final), split))
        return paired_stats.Observation(value, *(kept if kept else (None, None)))

    def headline(self, metric, split=None):
        """(value, None) or (None, why not)."""
        if not metric:
            return None, "no headline metric (attribute headline_metric is empty; use --metric task=name)"
        chosen = self.pick_split(list(self.final), split)
        if chosen is None:
            return None, "no final metrics"
        if metric not in self.final[chosen]:
            return None, f"final/{chosen} has no metric '{metric}'"
        value = self.final[chosen][metric]
        if not math.isfinite(value):
            return None, f"final/{chosen}/{metric} is {value}"
        return value, None


def find_run_files(paths):
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            hits = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                if RUN_FILE in files:
                    hits.append(os.path.join(root, RUN_FILE))
            if not hits:
                raise InputError(path, f"no {RUN_FILE} files found under this folder")
            found.extend(hits)
        else:
            raise InputError(path, "no such file or folder")
    return found


def read_run(path, attempts=5):
    """A run still being written may be met mid-flush: retry briefly before calling the file unreadable."""
    import time
    verify_run_file(path)  # damage is final: no retry
    for attempt in range(attempts):
        try:
            return Run(path)
        except InputError:
            if attempt == attempts - 1 or not h5py.is_hdf5(path):
                raise
            time.sleep(0.1)


def load_runs(paths):
    return [read_run(p) for p in find_run_files(paths)]


def parse_metric_overrides(items):
    overrides = {}
    for item in items or []:
        task, sep, metric = item.partition("=")
        if not sep or not task or not metric:
            raise InputError("--metric", f"expected task=metric, got '{item}'")
        overrides[task] = metric
    return overrides


# Rows, panels and lines follow the method registry's display order, which `peftlab` passes in
# PEFTLAB_METHOD_ORDER (`peftlab methods` lists it); methods it does not name come after, by name. Labels of one
# method sort naturally (r=4 before r=16).
def method_order():
    return tuple(name for name in os.environ.get("PEFTLAB_METHOD_ORDER", "").split(",") if name)


def _natural(text):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def label_order(runs):
    """The method labels of these runs, in display order."""
    method_of = {}
    for run in runs:
        method_of.setdefault(run.label, run.method)
    rank = {m: i for i, m in enumerate(method_order())}
    return sorted(method_of, key=lambda l: (rank.get(method_of[l], len(rank)), method_of[l], _natural(l)))


def share_text(percent, none):
    """Trainable share in %: two decimals, or two significant digits below 0.1 % (LoRA on a 7B model)."""
    if percent is None:
        return none
    return f"{percent:.2f}" if percent >= 0.1 or percent == 0 else f"{percent:.2g}"


# ---------------------------------------------------------------- tuned sweeps


def _tuned_text(axes):
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(axes.items()))


def choose_tuned(runs):
    """For runs of tuned sweeps: per (task, method label), the value of the tuned axes whose completed runs
    score best on the tuning's split and metric (mean over seeds; the metric's recorded direction, loss lower;
    ties to the smaller mean's first value in sorted order). Returns (the runs to report: untuned runs and
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
        for axes_json, members in sorted(by_value.items()):
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


# ---------------------------------------------------------------- the results table


class Cell:
    def __init__(self, values):
        self.values = list(values)
        self.n = len(self.values)
        self.mean = float(np.mean(self.values)) if self.values else None
        # Sample standard deviation over seeds (ddof=1); one seed has none.
        self.std = float(np.std(self.values, ddof=1)) if self.n >= 2 else None
        self.median = float(np.median(self.values)) if self.values else None
        self.best = False


class Table:
    def __init__(self, runs, overrides, split=None, baseline=None):
        runs, self.chosen, self.candidates = choose_tuned(runs)
        self.tasks = sorted({r.task for r in runs})
        self.metric = {t: overrides.get(t) or self._common_metric(runs, t) for t in self.tasks}
        self.direction = {t: self._common_direction(runs, t, self.metric[t]) for t in self.tasks}
        self.excluded = []  # (run, why)
        values = defaultdict(list)  # (label, task) -> values
        seeds = defaultdict(dict)  # (label, task) -> {seed: paired_stats.Observation}
        shares = defaultdict(list)
        for run in runs:
            if run.status != "completed":
                self.excluded.append((run, f"status {run.status}"))
                continue
            value, why = run.headline(self.metric[run.task], split)
            if why:
                self.excluded.append((run, why))
                continue
            values[(run.label, run.task)].append(value)
            if run.seed is not None:
                seeds[(run.label, run.task)][run.seed] = run.observation(self.metric[run.task], split)
            total = run.attr("total_params", 0)
            if total:
                shares[run.label].append(100.0 * run.attr("trainable_params", 0) / total)
        self.rows = label_order(runs)
        self.cells = {(l, t): Cell(values[(l, t)]) for l in self.rows for t in self.tasks}
        self.avg = {}
        for label in self.rows:
            means = [self.cells[(label, t)].mean for t in self.tasks]
            self.avg[label] = float(np.mean(means)) if all(m is not None for m in means) else None
        self.share = {l: (float(np.mean(shares[l])) if shares[l] else None) for l in self.rows}
        self._mark_best()
        self._pair_with(baseline, seeds)

    def _pair_with(self, baseline, seeds):
        """Each other method's paired difference to the baseline, per task (paired_stats)."""
        self.baseline = baseline
        self.paired = {}  # (label, task) -> PairedDifference
        if baseline is None:
            return
        if baseline not in self.rows:
            raise InputError("--baseline", f"no method label '{baseline}' among the runs ({', '.join(self.rows)})")
        for label in self.rows:
            if label == baseline:
                continue
            for task in self.tasks:
                d = paired_stats.paired_difference(seeds[(baseline, task)], seeds[(label, task)], self.metric[task])
                if d is not None:
                    self.paired[(label, task)] = d

    def paired_text(self, d, scale, digits):
        if d is None:
            return "–"
        text = f"{d.diff * scale:+.{digits}f}"
        if d.low is not None:
            text += f" [{d.low * scale:+.{digits}f}, {d.high * scale:+.{digits}f}]"
        if d.excludes_zero:
            text += " *"
        return text

    def paired_html(self, scale, digits):
        if self.baseline is None:
            return ""
        esc = html_escape
        parts = [f"<h3>Paired difference to {esc(self.baseline)}</h3>",
                 "<table><thead><tr><th>Method</th>" + "".join(f"<th>{esc(h)}</th>" for h in self.header())
                 + "</tr></thead><tbody>"]
        for label in self.rows:
            if label == self.baseline:
                continue
            cells = "".join(f"<td>{esc(self.paired_text(self.paired.get((label, t)), scale, digits))}</td>"
                            for t in self.tasks)
            parts.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
        parts.append("</tbody></table><p><small>Method − baseline, mean over shared seeds; 95 % bootstrap interval "
                     "over seeds and, where the run files keep per-example predictions, evaluation examples; "
                     "* marks an interval that excludes 0.</small></p>")
        return "\n".join(parts)

    def paired_markdown(self, scale, digits):
        """The differences to the baseline, with 95 % intervals; * where an interval excludes zero."""
        if self.baseline is None:
            return ""
        lines = ["", f"Paired difference to {self.baseline} (method − baseline over shared seeds; 95 % bootstrap "
                     "interval; * excludes 0):", "",
                 "| Method | " + " | ".join(self.header()) + " |", "|---|" + "---:|" * len(self.tasks)]
        levels = set()
        for label in self.rows:
            if label == self.baseline:
                continue
            cells = []
            for t in self.tasks:
                d = self.paired.get((label, t))
                if d is not None:
                    levels.add(d.level)
                    cells.append(self.paired_text(d, scale, digits) + f" (n={d.seeds})")
                else:
                    cells.append("–")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        what = {"seeds+examples": "seeds and evaluation examples resampled",
                "seeds": "seeds resampled (no per-example predictions in these run files)",
                "none": "one shared seed and no per-example predictions: no interval"}
        lines += ["", "Intervals: " + "; ".join(what[l] for l in sorted(levels)) + "."] if levels else []
        return "\n".join(lines) + "\n"

    @staticmethod
    def _common_metric(runs, task):
        names = sorted({r.metric for r in runs if r.task == task and r.metric})
        if len(names) > 1:
            raise InputError(task, f"runs disagree on the headline metric ({', '.join(names)}); "
                                   f"choose one with --metric {task}=NAME")
        return names[0] if names else ""

    @staticmethod
    def _common_direction(runs, task, metric):
        """The direction ("higher" or "lower") the runs recorded for the metric; None when none did."""
        found = sorted({r.directions[metric] for r in runs if r.task == task and metric in r.directions})
        if len(found) > 1:
            raise InputError(task, f"runs disagree on whether higher or lower {metric} is better")
        return found[0] if found else None

    def _mark_best(self):
        for task in self.tasks:
            cells = [self.cells[(l, task)] for l in self.rows if self.cells[(l, task)].mean is not None]
            if cells and self.direction[task]:
                pick = min if self.direction[task] == "lower" else max
                best = pick(c.mean for c in cells)
                for c in cells:
                    c.best = c.mean == best
        avgs = [a for a in self.avg.values() if a is not None]
        # An average is ranked only when every column agrees on the direction.
        directions = {self.direction[t] for t in self.tasks}
        self.best_avg = None
        if avgs and len(directions) == 1 and None not in directions:
            self.best_avg = (min if directions == {"lower"} else max)(avgs)

    # -- formatting

    def _fmt(self, x, scale, digits):
        return f"{x * scale:.{digits}f}"

    def cell_text(self, cell, scale, digits, pm="±"):
        if cell.mean is None:
            return "–" if pm == "±" else "--"
        text = self._fmt(cell.mean, scale, digits)
        if cell.std is not None:
            text += f" {pm} {self._fmt(cell.std, scale, digits)}"
        return text

    def header(self):
        return [f"{t} ({self.metric[t] or '?'})" for t in self.tasks]

    def markdown(self, scale, digits):
        lines = ["| Method | " + " | ".join(self.header()) + " | Avg | Trainable (%) |",
                 "|---|" + "---:|" * (len(self.tasks) + 2)]
        for label in self.rows:
            cells = []
            for t in self.tasks:
                c = self.cells[(label, t)]
                text = self.cell_text(c, scale, digits)
                if c.mean is not None:
                    text += f" (n={c.n})"
                cells.append(f"**{text}**" if c.best else text)
            avg = self.avg[label]
            avg_text = "–" if avg is None else self._fmt(avg, scale, digits)
            if avg is not None and avg == self.best_avg:
                avg_text = f"**{avg_text}**"
            share = share_text(self.share[label], "–")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {avg_text} | {share} |")
        lines += self._excluded_lines("")
        lines += self.tuning_lines()
        return "\n".join(lines) + "\n"

    def tuning_lines(self):
        """Which value of the tuned axes each row reports, and what the others scored."""
        if not self.chosen:
            return []
        lines = ["", "Tuned: each method at its own best value, chosen on the selection split (mean over seeds):"]
        for task, label, text, mean, n, split, metric in self.candidates:
            mark = " (chosen)" if self.chosen.get((task, label)) == text else ""
            score = "–" if mean is None else f"{mean:.4f}"
            lines.append(f"- {task} / {label}: {text}: {split} {metric} {score} (n={n}){mark}")
        return lines

    def latex(self, scale, digits):
        cols = "l" + "r" * (len(self.tasks) + 2)
        lines = [r"\begin{tabular}{" + cols + "}", r"\toprule",
                 "Method & " + " & ".join(latex_escape(h) for h in self.header()) + r" & Avg & Trainable (\%) \\",
                 r"\midrule"]
        for label in self.rows:
            cells = []
            for t in self.tasks:
                c = self.cells[(label, t)]
                text = self.cell_text(c, scale, digits, pm=r"$\pm$")
                if c.mean is not None:
                    text += f" ({c.n})"
                cells.append(r"\textbf{" + text + "}" if c.best else text)
            avg = self.avg[label]
            avg_text = "--" if avg is None else self._fmt(avg, scale, digits)
            if avg is not None and avg == self.best_avg:
                avg_text = r"\textbf{" + avg_text + "}"
            share = share_text(self.share[label], "--")
            lines.append(latex_escape(label) + " & " + " & ".join(cells) + f" & {avg_text} & {share} " + r"\\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += self._excluded_lines("% ")
        return "\n".join(lines) + "\n"

    def csv(self):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        head = ["method"]
        for t in self.tasks:
            head += [f"{t}_mean", f"{t}_std", f"{t}_median", f"{t}_n", f"{t}_best"]
            if self.baseline is not None:
                head += [f"{t}_diff", f"{t}_diff_low", f"{t}_diff_high"]
        if self.chosen:
            head += [f"{t}_chosen" for t in self.tasks]
        writer.writerow(head + ["avg", "trainable_percent"])
        for label in self.rows:
            row = [label]
            for t in self.tasks:
                c = self.cells[(label, t)]
                row += [_num(c.mean), _num(c.std), _num(c.median), c.n, int(c.best)]
                if self.baseline is not None:
                    d = self.paired.get((label, t))
                    row += [_num(d.diff if d else None), _num(d.low if d else None), _num(d.high if d else None)]
            if self.chosen:
                row += [self.chosen.get((t, label), "") for t in self.tasks]
            writer.writerow(row + [_num(self.avg[label]), _num(self.share[label])])
        return out.getvalue()

    def html(self, scale, digits):
        esc = html_escape
        parts = ["<table>", "<thead><tr><th>Method</th>" + "".join(f"<th>{esc(h)}</th>" for h in self.header())
                 + "<th>Avg</th><th>Trainable (%)</th></tr></thead><tbody>"]
        for label in self.rows:
            cells = []
            for t in self.tasks:
                c = self.cells[(label, t)]
                text = esc(self.cell_text(c, scale, digits)) + (f" <small>(n={c.n})</small>" if c.mean is not None else "")
                cells.append(f"<td><b>{text}</b></td>" if c.best else f"<td>{text}</td>")
            avg = self.avg[label]
            avg_text = "–" if avg is None else self._fmt(avg, scale, digits)
            if avg is not None and avg == self.best_avg:
                avg_text = f"<b>{avg_text}</b>"
            share = share_text(self.share[label], "–")
            parts.append(f"<tr><th>{esc(label)}</th>" + "".join(cells) + f"<td>{avg_text}</td><td>{share}</td></tr>")
        parts.append("</tbody></table>")
        if self.excluded:
            parts.append('<p class="warn">Not averaged in:</p><ul class="warn">')
            parts += [f"<li>{esc(run.path)}: {esc(why)}</li>" for run, why in self.excluded]
            parts.append("</ul>")
        return "\n".join(parts)

    def _excluded_lines(self, prefix):
        if not self.excluded:
            return []
        lines = ["", f"{prefix}Not averaged in ({len(self.excluded)} run(s)):"]
        lines += [f"{prefix}- {run.path}: {why}" for run, why in self.excluded]
        return lines


def _num(x):
    return "" if x is None else repr(float(x))


def latex_escape(text):
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(ch, ch) for ch in text)


def html_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def command_table(args):
    runs = load_runs(args.runs)
    table = Table(runs, parse_metric_overrides(args.metric), args.split, args.baseline)
    scale, digits = (100.0, 2) if args.percent else (1.0, 4)
    if args.format == "md":
        text = table.markdown(scale, digits) + table.paired_markdown(scale, digits)
    elif args.format == "latex":
        text = table.latex(scale, digits)
    else:
        text = table.csv()
        for run, why in table.excluded:
            sys.stderr.write(f"warning: {run.path}: not averaged in: {why}\n")
    emit(text, args.out)
    return 0


def emit(text, out):
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------- figures


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.hashsalt": "peftlab", "figure.dpi": 100, "font.size": 9})
    return plt


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]


def module_type(layer):
    return layer.rsplit(".", 1)[-1]


def layer_index(layer):
    parts = layer.split(".")
    for a, b in zip(parts, parts[1:]):
        if a in ("layers", "layer", "h", "blocks") and b.isdigit():
            return int(b)
    return None


def plot_runs(runs, include_incomplete):
    kept, skipped = [], []
    for run in runs:
        (kept if include_incomplete or run.status == "completed" else skipped).append(run)
    for run in skipped:
        sys.stderr.write(f"warning: {run.path}: left out of the figures: status {run.status}\n")
    return kept


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


def _fmt_stat(x, spec):
    return "n/a" if x is None else format(x, spec)


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
    plt = _pyplot()
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
                         f"slope {_fmt_stat(slope, '.3g')}, r = {_fmt_stat(r, '.3f')}, {len(points)} points",
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
        stem = os.path.join(out_dir, f"dynamics_{_safe(task)}_{_safe(module)}_{dim}")
        fig.savefig(f"{stem}.{fmt}", bbox_inches="tight")
        plt.close(fig)
        _write_json(stem + ".json", record)
        written.append(f"{stem}.{fmt}")
    return written


def _short_layer(layer):
    index = layer_index(layer)
    return f"layer {index}" if index is not None else layer


def _safe(name):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def _write_json(path, record):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, allow_nan=False, default=float)


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
    plt = _pyplot()
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
        stem = os.path.join(out_dir, f"curves_{_safe(task)}")
        fig.savefig(f"{stem}.{fmt}", bbox_inches="tight")
        plt.close(fig)
        _write_json(stem + ".json", record)
        written.append(f"{stem}.{fmt}")
    return written


def command_plot(args):
    runs = plot_runs(load_runs(args.runs), args.include_incomplete)
    if not runs:
        raise InputError(" ".join(args.runs), "no completed runs to plot (see --include-incomplete)")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise InputError(args.out, f"cannot create the output folder: {e.strerror}")
    if args.kind == "dynamics":
        written = plot_dynamics(runs, args.out, args.format)
    else:
        written = plot_curves(runs, args.out, args.format, parse_metric_overrides(args.metric), args.split)
    for path in written:
        print(path)
    return 0


# ---------------------------------------------------------------- the report page


def _inline_figure(path):
    if path.endswith(".svg"):
        with open(path, encoding="utf-8") as f:
            svg = f.read()
        return svg[svg.find("<svg"):]
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<img alt="{html_escape(os.path.basename(path))}" src="data:image/png;base64,{data}">'


REPORT_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-top: 1px solid #bbb; border-bottom: 1px solid #bbb; padding: 4px 10px; text-align: right; }
th:first-child, tbody th { text-align: left; }
thead th { border-bottom: 2px solid #444; }
.warn { color: #a33; }
figure { margin: 1.5em 0; }
figure img, figure svg { max-width: 100%; height: auto; }
small { color: #666; }
.wide { overflow-x: auto; }
table.runs td, table.runs th, table.dynamics td:nth-child(2), table.dynamics td:nth-child(3) { text-align: left; }
table.runs td { white-space: nowrap; font-size: 90%; }
"""


def command_report(args):
    runs = load_runs(args.runs)
    overrides = parse_metric_overrides(args.metric)
    table = Table(runs, overrides, args.split, args.baseline)
    plotted = plot_runs(runs, False)
    figures = []
    with tempfile.TemporaryDirectory(prefix="peftlab-report-") as tmp:
        if plotted:
            figures += plot_curves(plotted, tmp, "png", overrides, args.split)
            if any(r.decomposition for r in plotted):
                figures += plot_dynamics(plotted, tmp, "png")
        body = [f"<h1>{html_escape(args.title)}</h1>",
                f"<p>{len(runs)} run file(s); {sum(r.status == 'completed' for r in runs)} completed.</p>",
                "<h2>Results</h2>", table.html(100.0 if args.percent else 1.0, 2 if args.percent else 4),
                "<p><small>Cells: mean ± sample std over seeds (n seeds) of each task's headline metric; "
                "best per column in bold.</small></p>",
                table.paired_html(100.0 if args.percent else 1.0, 2 if args.percent else 4)]
        sections = (("Training curves", "curves_"), ("Magnitude vs direction dynamics", "dynamics_"))
        for title, prefix in sections:
            chosen = [f for f in figures if os.path.basename(f).startswith(prefix)]
            if chosen:
                body.append(f"<h2>{title}</h2>")
                if prefix == "dynamics_":
                    body.append(_dynamics_summary([os.path.splitext(f)[0] + ".json" for f in chosen]))
                body += [f"<figure>{_inline_figure(f)}</figure>" for f in chosen]
    body.append("<h2>Runs</h2>")
    body.append(_runs_table(runs))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html_escape(args.title)}</title><style>{REPORT_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    try:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        raise InputError(args.out, f"cannot write the report: {e.strerror}")
    print(args.out)
    return 0


def _dynamics_summary(json_paths):
    """One row per figure (task, module, dimension): each method's fitted slope and Pearson r of dM on dD."""
    records = []
    for path in json_paths:
        with open(path, encoding="utf-8") as f:
            records.append(json.load(f))
    methods = []
    for rec in records:
        methods += [p["method"] for p in rec["panels"] if p["method"] not in methods]
    esc = html_escape
    rows = ['<table class="dynamics"><thead><tr><th>Task</th><th>Module</th><th>Dimension</th>'
            + "".join(f"<th>{esc(m)}<br><small>slope, r</small></th>" for m in methods) + "</tr></thead><tbody>"]
    for rec in records:
        stats = {p["method"]: p for p in rec["panels"]}
        cells = []
        for m in methods:
            p = stats.get(m)
            cells.append("<td>–</td>" if p is None else
                         f"<td>{_fmt_stat(p['slope'], '.3g')}, {_fmt_stat(p['pearson_r'], '.2f')}</td>")
        rows.append(f"<tr><th>{esc(rec['task'])}</th><td>{esc(rec['module'])}</td><td>{esc(rec['dimension'])}s</td>"
                    + "".join(cells) + "</tr>")
    rows.append("</tbody></table>")
    steps = records[0]["steps"] if records else []
    rows.append("<p><small>Least-squares slope of ΔM on ΔD and Pearson r over every plotted point (one per layer "
                f"and step, mean over seeds; steps {', '.join(map(str, steps))}). The DoRA paper reports a negative "
                "correlation for full fine-tuning and DoRA, a positive one for LoRA.</small></p>")
    return "\n".join(rows)


def _runs_table(runs):
    keys = ("run_id", "method_label", "task", "seed", "status", "start_time", "end_time", "git_commit", "host")
    rows = ['<div class="wide"><table class="runs"><thead><tr>' + "".join(f"<th>{k}</th>" for k in keys)
            + "</tr></thead><tbody>"]
    order = label_order(runs)
    for r in sorted(runs, key=lambda r: (r.task, order.index(r.label), str(r.seed), r.path)):
        cells = []
        for k in keys:
            value = str(r.attr(k, ""))
            if k == "git_commit" and len(value) > 12:  # the full hash stays in the tooltip
                cells.append(f'<td title="{html_escape(value)}">{html_escape(value[:12])}</td>')
            else:
                cells.append(f"<td>{html_escape(value)}</td>")
        rows.append(f'<tr{" class=warn" if r.status != "completed" else ""}>{"".join(cells)}</tr>')
    rows.append("</tbody></table></div>")
    return "\n".join(rows)


# ---------------------------------------------------------------- command line


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError("usage", message)


def main(argv):
    parser = _Parser(prog="peftlab_analysis.py")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p):
        p.add_argument("runs", nargs="+", help="run folders (searched for run.h5) or run files")
        p.add_argument("--metric", action="append", default=[], help="task=metric: the headline metric of a task")
        p.add_argument("--split", default=None, help="split of the final/eval metrics (default: dev, validation, test)")

    t = sub.add_parser("table")
    common(t)
    t.add_argument("--format", choices=("md", "latex", "csv"), default="md")
    t.add_argument("--percent", action="store_true", help="show metrics x100 with 2 decimals")
    t.add_argument("--baseline", default=None,
                   help="method label to compare every other method with: paired differences, 95%% intervals")
    t.add_argument("--out", default=None)
    p = sub.add_parser("plot")
    common(p)
    p.add_argument("--kind", choices=("dynamics", "curves"), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=("png", "svg"), default="png")
    p.add_argument("--include-incomplete", action="store_true", help="also plot runs that did not complete")
    r = sub.add_parser("report")
    common(r)
    r.add_argument("--out", required=True)
    r.add_argument("--title", default="peftlab report")
    r.add_argument("--percent", action="store_true")
    r.add_argument("--baseline", default=None, help="method label for paired differences (as table --baseline)")

    try:
        args = parser.parse_args(argv)
        return {"table": command_table, "plot": command_plot, "report": command_report}[args.command](args)
    except InputError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
