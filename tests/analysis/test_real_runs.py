#!/usr/bin/env python3
"""`peftlab table` and `peftlab plot` checked on REAL run files (from `peftlab run`), against numbers computed
here directly from the run files with h5py and plain Python (no numpy, nothing from analysis/).

    test_real_runs.py --runs DIR [--peftlab BIN]                    check the run files under DIR
    test_real_runs.py --spec SPEC [--set k=v ...] --runs DIR        first `peftlab run SPEC --out DIR` (runs
                                                                    already completed there are kept), then check
    test_real_runs.py --spec SPEC [--set k=v ...] --fresh           the same in a new temporary folder

Environment: PEFTLAB_REAL_RUNS (a run folder: replaces --runs and nothing is run; ignored with --fresh),
PEFTLAB_BIN (the peftlab binary; default build/peftlab), PEFTLAB_ANALYSIS_DIR (passed on to peftlab as usual).
Without any run folder the test is skipped with exit status 77 (ctest: SKIP_RETURN_CODE).
"""
import argparse
import csv
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import unittest

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

try:
    import h5py
except ImportError:  # pragma: no cover
    sys.stderr.write("error: h5py is missing (Debian: apt-get install python3-h5py)\n")
    sys.exit(1)

SKIP = 77
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = {}


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class RunFile:
    """What the checks need from one run file, read with h5py only."""

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as f:
            a = f.attrs
            self.status = text(a["status"])
            self.method = text(a["method"])
            self.label = text(a["method_label"]) if "method_label" in a else self.method
            self.task = text(a["task"])
            self.metric = text(a["headline_metric"]) if "headline_metric" in a else ""
            self.split = text(a["headline_split"]) if "headline_split" in a else None
            self.directions = json.loads(text(a["metric_directions"])) if "metric_directions" in a else {}
            self.trainable = int(a["trainable_params"])
            self.total = int(a["total_params"])
            self.final = {s: {k: float(v) for k, v in f["final"][s].attrs.items()} for s in f.get("final", {})}
            self.train = {k: list(f["train"][k][()]) for k in ("step", "loss")} if "train" in f else {}
            self.decomposition = {}
            for layer, g in f.get("decomposition", {}).items():
                self.decomposition[layer] = {k: g[k][()].tolist() for k in g.keys()}

    def headline(self):
        for split in (self.split, "dev", "validation", "test"):
            if split and split in self.final:
                return self.final[split].get(self.metric)
        return None


def find_runs(folder):
    paths = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        if "run.h5" in files:
            paths.append(os.path.join(root, "run.h5"))
    return [RunFile(p) for p in paths]


def peftlab(*args, check=True):
    cmd = [CONFIG["bin"]] + list(args)
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def module_of(layer):
    return layer.rsplit(".", 1)[-1]


def fit(xs, ys):
    """Least-squares slope and Pearson r from the sums, written out."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / sxx, my - sxy / sxx * mx, sxy / math.sqrt(sxx * syy)


def expected_steps(recorded):
    """The documented selection (docs/analysis.md): steps after 0; beyond 12, every k-th back from the last."""
    steps = sorted(s for s in set(recorded) if s > 0)
    k = 1
    while math.ceil(len(steps) / k) > 12:
        k += 1
    return sorted(steps[len(steps) - 1::-k])


class RealRuns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.runs = find_runs(CONFIG["runs"])
        cls.completed = [r for r in cls.runs if r.status == "completed"]
        cls.out = tempfile.mkdtemp(prefix="peftlab-real-runs-")
        cls.csv = peftlab("table", CONFIG["runs"], "--format", "csv")
        cls.md = peftlab("table", CONFIG["runs"])
        cls.figures = os.path.join(cls.out, "dynamics")
        cls.dynamics = peftlab("plot", CONFIG["runs"], "--kind", "dynamics", "--out", cls.figures)
        cls.curves_dir = os.path.join(cls.out, "curves")
        cls.curves = peftlab("plot", CONFIG["runs"], "--kind", "curves", "--out", cls.curves_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def display_order(self, labels):
        """The method registry's order (`peftlab methods --json`), then any other method."""
        listed = json.loads(peftlab("methods", "--json").stdout)
        rank = {m["name"]: i for i, m in enumerate(listed)}
        method = {r.label: r.method for r in self.runs}
        return sorted(labels, key=lambda l: (rank.get(method[l], len(rank)), method[l], l))

    def groups(self):
        """(label, task) -> headline values of the completed runs that have one."""
        out = {}
        for r in self.completed:
            value = r.headline()
            if value is not None and math.isfinite(value):
                out.setdefault((r.label, r.task), []).append(value)
        return out

    def test_runs_are_real(self):
        self.assertGreater(len(self.completed), 0, f"no completed run under {CONFIG['runs']}")
        for r in self.completed:
            self.assertTrue(r.decomposition, f"{r.path}: no decomposition statistics")
            self.assertTrue(r.train.get("step"), f"{r.path}: no training log")
        for r in self.runs:
            if r.status != "completed":
                self.assertIn(f"{r.path}: not averaged in: status {r.status}", self.csv.stderr)

    def test_table_csv_equals_direct_computation(self):
        ordered = list(csv.DictReader(io.StringIO(self.csv.stdout)))
        rows = {row["method"]: row for row in ordered}
        self.assertEqual(set(rows), {r.label for r in self.runs})
        self.assertEqual([row["method"] for row in ordered], self.display_order(rows))
        groups = self.groups()
        tasks = sorted({r.task for r in self.runs})
        means = {}
        for label, row in rows.items():
            for task in tasks:
                values = groups.get((label, task), [])
                self.assertEqual(int(row[f"{task}_n"]), len(values), (label, task))
                if not values:
                    self.assertEqual(row[f"{task}_mean"], "")
                    continue
                means[(label, task)] = statistics.fmean(values)
                self.assertAlmostEqual(float(row[f"{task}_mean"]), statistics.fmean(values), delta=1e-12)
                if len(values) > 1:
                    self.assertAlmostEqual(float(row[f"{task}_std"]), statistics.stdev(values), delta=1e-12)
                else:
                    self.assertEqual(row[f"{task}_std"], "")
            shares = [100.0 * r.trainable / r.total for r in self.completed if r.label == label and r.total]
            if shares:
                self.assertAlmostEqual(float(row["trainable_percent"]), statistics.fmean(shares), delta=1e-9)
            if all((label, t) in means for t in tasks):
                self.assertAlmostEqual(float(row["avg"]), statistics.fmean(means[(label, t)] for t in tasks),
                                       delta=1e-12)
        for task in tasks:
            run = next(r for r in self.runs if r.task == task)
            direction = run.directions.get(run.metric)  # the run file says; nothing is guessed
            candidates = {l: m for (l, t), m in means.items() if t == task}
            best = None if direction is None else (min if direction == "lower" else max)(candidates.values())
            for label, row in rows.items():
                self.assertEqual(row[f"{task}_best"], "1" if best is not None and candidates.get(label) == best else "0",
                                 (label, task))

    def test_markdown_table_shows_the_same_numbers(self):
        for (label, task), values in self.groups().items():
            cell = f"{statistics.fmean(values):.4f}"
            if len(values) > 1:
                cell += f" ± {statistics.stdev(values):.4f}"
            cell += f" (n={len(values)})"
            line = next(l for l in self.md.stdout.splitlines() if l.startswith(f"| {label} |"))
            self.assertIn(cell, line)

    def test_dynamics_data_equal_the_recorded_statistics(self):
        expected = {}  # (task, module, dim) -> label -> (layer, step) -> [(dD, dM) per seed]
        seeds = {}
        for r in self.completed:
            for layer, d in r.decomposition.items():
                for dim in ("row", "col"):
                    key = (r.task, module_of(layer), dim)
                    seeds.setdefault((key, r.label), set()).add(r.path)
                    for step, dD, dM in zip(d["step"], d["dD_" + dim], d["dM_" + dim]):
                        expected.setdefault(key, {}).setdefault(r.label, {}).setdefault((layer, step), []).append((dD, dM))
        self.assertTrue(expected)
        for (task, module, dim), panels in expected.items():
            stem = os.path.join(self.figures, f"dynamics_{task}_{module}_{dim}")
            with open(stem + ".png", "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            with open(stem + ".json") as f:
                data = json.load(f)
            recorded = {step for panel in panels.values() for (_, step) in panel}
            self.assertEqual(data["steps_recorded"], sorted(recorded))
            self.assertEqual(data["steps"], expected_steps(recorded))
            self.assertLessEqual(len(data["steps"]), 12)
            self.assertEqual([p["method"] for p in data["panels"]], self.display_order(panels))
            for panel in data["panels"]:
                label = panel["method"]
                want = {k: v for k, v in panels[label].items() if k[1] in data["steps"]}
                got = {(p["layer"], p["step"]): p for p in panel["points"]}
                self.assertEqual(set(got), set(want), (stem, label))
                self.assertEqual(panel["runs"], len(seeds[((task, module, dim), label)]))
                for key, pairs in want.items():
                    p = got[key]
                    self.assertEqual(p["n_seeds"], len(pairs))
                    self.assertAlmostEqual(p["dD"], statistics.fmean(x for x, _ in pairs), delta=1e-15)
                    self.assertAlmostEqual(p["dM"], statistics.fmean(y for _, y in pairs), delta=1e-15)
                slope, intercept, r = fit([p["dD"] for p in panel["points"]], [p["dM"] for p in panel["points"]])
                self.assertAlmostEqual(panel["slope"], slope, delta=1e-9 * max(1.0, abs(slope)))
                self.assertAlmostEqual(panel["intercept"], intercept, delta=1e-9)
                self.assertAlmostEqual(panel["pearson_r"], r, delta=1e-9)

    def test_recorded_dM_agrees_with_the_recorded_magnitudes(self):
        """The C++ statistic against the magnitudes it recorded: dM_row at step t is the mean over rows of
        | m_row(t) - m_row(0) | (m_row(0) = row norms of W0), likewise for columns."""
        checked = 0
        for r in self.completed:
            for layer, d in r.decomposition.items():
                for dim in ("row", "col"):
                    m = d.get("m_" + dim)
                    if not m or d["step"][0] != 0:
                        continue
                    self.assertEqual(len(m), len(d["step"]))
                    # At step 0, W' = W0 up to float32 rounding (DoRA/BoRA rescale W0 by m / ||W0|| = 1).
                    self.assertAlmostEqual(d["dM_" + dim][0], 0.0, delta=1e-6, msg=(r.path, layer, dim))
                    self.assertAlmostEqual(d["dD_" + dim][0], 0.0, delta=1e-6, msg=(r.path, layer, dim))
                    for t in range(1, len(m)):
                        direct = statistics.fmean(abs(a - b) for a, b in zip(m[t], m[0]))
                        # Both are float64 computed from the same norms: equal up to summation order.
                        self.assertAlmostEqual(d["dM_" + dim][t], direct, delta=1e-12,
                                               msg=(r.path, layer, dim, d["step"][t]))
                        checked += 1
        if checked == 0:
            self.skipTest("no run recorded magnitudes from step 0 (record.magnitudes: true)")

    def test_curves_data_equal_the_recorded_losses(self):
        labels = {r.label for r in self.completed}
        for task in sorted({r.task for r in self.completed}):
            with open(os.path.join(self.curves_dir, f"curves_{task}.json")) as f:
                data = json.load(f)
            self.assertTrue(os.path.exists(os.path.join(self.curves_dir, f"curves_{task}.png")))
            self.assertEqual({m["method"] for m in data["methods"]}, {r.label for r in self.completed if r.task == task})
            for m in data["methods"]:
                self.assertIn(m["method"], labels)
                group = [r for r in self.completed if r.task == task and r.label == m["method"]]
                by_step = {}
                for r in group:
                    for step, loss in zip(r.train["step"], r.train["loss"]):
                        by_step.setdefault(step, []).append(loss)
                self.assertEqual(m["loss"]["step"], sorted(by_step))
                for i, step in enumerate(m["loss"]["step"]):
                    self.assertAlmostEqual(m["loss"]["mean"][i], statistics.fmean(by_step[step]), delta=1e-12)
                    self.assertEqual(m["loss"]["min"][i], min(by_step[step]))
                    self.assertEqual(m["loss"]["max"][i], max(by_step[step]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", help="folder of run files")
    parser.add_argument("--spec", help="run this spec into the folder first")
    parser.add_argument("--set", action="append", default=[], help="spec override for --spec (repeatable)")
    parser.add_argument("--fresh", action="store_true", help="with --spec: run into a new temporary folder")
    parser.add_argument("--jobs", default="1")
    parser.add_argument("--peftlab", default=os.environ.get("PEFTLAB_BIN", os.path.join(SOURCE_DIR, "build", "peftlab")))
    args, rest = parser.parse_known_args()
    CONFIG["bin"] = args.peftlab
    env_runs = os.environ.get("PEFTLAB_REAL_RUNS")
    made = None
    if env_runs and not args.fresh:
        CONFIG["runs"] = env_runs
    elif args.spec and (args.runs or args.fresh):
        CONFIG["runs"] = made = tempfile.mkdtemp(prefix="peftlab-runs-") if args.fresh else args.runs
        cmd = [args.peftlab, "-q", "run", args.spec, "--out", CONFIG["runs"], "--jobs", args.jobs, "--no-table"]
        for item in args.set:
            cmd += ["--set", item]
        print("running:", " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            sys.stderr.write("error: peftlab run failed\n")
            return 1
    elif args.runs:
        CONFIG["runs"] = args.runs
    if not CONFIG.get("runs") or not os.path.isdir(CONFIG["runs"]):
        print(f"SKIPPED: no folder of real run files (give --runs DIR, --spec SPEC --fresh, or set "
              f"PEFTLAB_REAL_RUNS); got {CONFIG.get('runs')!r}")
        return SKIP
    if not os.access(CONFIG["bin"], os.X_OK):
        sys.stderr.write(f"error: {CONFIG['bin']}: no peftlab binary (set PEFTLAB_BIN or --peftlab)\n")
        return 1
    print(f"checking the run files under {CONFIG['runs']} with {CONFIG['bin']}", flush=True)
    try:
        result = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2).result
    finally:
        if made and args.fresh:
            shutil.rmtree(made, ignore_errors=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
