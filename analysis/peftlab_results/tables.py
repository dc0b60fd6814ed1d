"""The results table: one row per method label, one column per task (mean ± sample std over seeds), the
average and the trainable share; the best cell of each column marked; optionally the paired differences to a
baseline method. Written as markdown, LaTeX (booktabs), CSV or HTML (for the report)."""
import csv
import io
from collections import defaultdict

import numpy as np

from . import paired_stats
from .errors import InputError
from .formatting import csv_number, html_escape, latex_escape, share_text
from .order import label_order
from .tuning import choose_tuned


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
        # Which weights the numbers come from (the run attribute `selection`): task/label pairs per protocol.
        self.selection = defaultdict(set)
        for run in runs:
            if run.status == "completed" and run.attr("selection", None):
                self.selection[run.attr("selection", None)].add(f"{run.task}/{run.label}")
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
        lines += self.selection_lines("")
        return "\n".join(lines) + "\n"

    def selection_lines(self, prefix):
        """The protocol behind the numbers: one line per way of choosing the weights, naming its runs."""
        if not self.selection:
            return []
        lines = ["", prefix + "Selection (which weights each number comes from):"]
        for text, runs in sorted(self.selection.items()):
            lines.append(f"{prefix}- {text}: {', '.join(sorted(runs))}")
        return lines

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
        lines += self.selection_lines("% ")
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
                row += [csv_number(c.mean), csv_number(c.std), csv_number(c.median), c.n, int(c.best)]
                if self.baseline is not None:
                    d = self.paired.get((label, t))
                    row += [csv_number(d.diff if d else None), csv_number(d.low if d else None),
                            csv_number(d.high if d else None)]
            if self.chosen:
                row += [self.chosen.get((t, label), "") for t in self.tasks]
            writer.writerow(row + [csv_number(self.avg[label]), csv_number(self.share[label])])
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
