"""Finding, verifying and reading run files (schema: docs/run-file.md)."""
import hashlib
import json
import math
import os

# The writer holds no HDF5 file lock (docs/run-file.md); skip locking here too so a live run can be read.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from . import paired_stats  # noqa: E402
from .errors import InputError  # noqa: E402

RUN_FILE = "run.h5"
SPLIT_PREFERENCE = ("dev", "validation", "test")


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
