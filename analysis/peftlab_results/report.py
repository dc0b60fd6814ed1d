"""The report: one self-contained HTML page (the table, the curves, a summary of the dynamics, the dynamics
figures as inline PNGs, the runs with their provenance); nothing is loaded from the network."""
import base64
import json
import os
import tempfile

from .curves import plot_curves
from .dynamics import plot_dynamics
from .figures import plot_runs
from .formatting import html_escape, stat_text
from .order import label_order
from .tables import Table


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


def report_page(runs, overrides, title, split=None, baseline=None, percent=False):
    """The page's HTML for these runs; figures are drawn into a temporary folder and inlined."""
    table = Table(runs, overrides, split, baseline)
    plotted = plot_runs(runs, False)
    figures = []
    with tempfile.TemporaryDirectory(prefix="peftlab-report-") as tmp:
        if plotted:
            figures += plot_curves(plotted, tmp, "png", overrides, split)
            if any(r.decomposition for r in plotted):
                figures += plot_dynamics(plotted, tmp, "png")
        body = [f"<h1>{html_escape(title)}</h1>",
                f"<p>{len(runs)} run file(s); {sum(r.status == 'completed' for r in runs)} completed.</p>",
                "<h2>Results</h2>", table.html(100.0 if percent else 1.0, 2 if percent else 4),
                "<p><small>Cells: mean ± sample std over seeds (n seeds) of each task's headline metric; "
                "best per column in bold.</small></p>",
                table.paired_html(100.0 if percent else 1.0, 2 if percent else 4)]
        sections = (("Training curves", "curves_"), ("Magnitude vs direction dynamics", "dynamics_"))
        for heading, prefix in sections:
            chosen = [f for f in figures if os.path.basename(f).startswith(prefix)]
            if chosen:
                body.append(f"<h2>{heading}</h2>")
                if prefix == "dynamics_":
                    body.append(_dynamics_summary([os.path.splitext(f)[0] + ".json" for f in chosen]))
                body += [f"<figure>{_inline_figure(f)}</figure>" for f in chosen]
    body.append("<h2>Runs</h2>")
    body.append(_runs_table(runs))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html_escape(title)}</title><style>{REPORT_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


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
                         f"<td>{stat_text(p['slope'], '.3g')}, {stat_text(p['pearson_r'], '.2f')}</td>")
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
