"""The command line: `table`, `plot` and `report`, as `peftlab table|plot|report` pass them on."""
import argparse
import os
import sys

from .curves import plot_curves
from .dynamics import plot_dynamics
from .errors import InputError
from .figures import plot_runs
from .report import report_page
from .runfiles import load_runs
from .tables import Table


def parse_metric_overrides(items):
    overrides = {}
    for item in items or []:
        task, sep, metric = item.partition("=")
        if not sep or not task or not metric:
            raise InputError("--metric", f"expected task=metric, got '{item}'")
        overrides[task] = metric
    return overrides



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

def command_report(args):
    runs = load_runs(args.runs)
    page = report_page(runs, parse_metric_overrides(args.metric), args.title, args.split, args.baseline,
                       args.percent)
    try:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        raise InputError(args.out, f"cannot write the report: {e.strerror}")
    print(args.out)
    return 0


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
