#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ with struct + json only (no peftlab code), and the run files of
fuzz_run_file with h5py (Debian's python3-h5py: /usr/bin/python3). Deterministic, except that HDF5 files
may differ byte for byte between HDF5 versions.

Run from the repository root: /usr/bin/python3 fuzz/make_corpus.py
"""
import hashlib
import io
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes); laid out in order."""
    header, buffer = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buffer), len(buffer) + len(raw)]}
        buffer += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + buffer


def llama2c(dim, hidden, layers, heads, kv_heads, vocab, seq, tied=True):
    """A tiny synthetic llama2.c checkpoint: the 7-int32 header, then deterministic float32 weights."""
    head_dim = dim // heads
    kv_dim = head_dim * kv_heads
    per_layer = 2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden
    count = vocab * dim + layers * per_layer + dim + seq * head_dim + (0 if tied else vocab * dim)
    header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if tied else -vocab, seq)
    return header + struct.pack("<%df" % count, *[((i * 37) % 17 - 8) / 16.0 for i in range(count)])


SPEC_MINIMAL = """name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - name: full
  - {name: lora, rank: 8, alpha: 16}
tasks:
  - name: sst2
"""

SPEC_FULL = """name: sweep-1
description: every section
model:
  init: {dim: 8, n_layers: 1, n_heads: 2, n_kv_heads: 1, vocab_size: 32, max_seq_len: 16, rope_theta: 500.0}
  tokenizer: tok.model
  dtype: bfloat16
  device: cuda:1
methods:
  - name: lora
    label: lora-r4
    rank: 4
    targets: &t [q_proj, v_proj]
  - {name: dora, rank: 4, targets: *t}
tasks:
  - name: sst2
  - {name: boolq, label: bq}
seeds: [0, 3, 7]
train:
  lr: 2.0e-3
  weight_decay: 0.01
  betas: [0.9, 0.95]
  eps: 1.0e-6
  no_decay: [norm, "bias$"]
  schedule: cosine
  warmup_ratio: 0.1
  batch_size: 16
  grad_accum: 2
  max_steps: 300
  grad_clip: 0.5
  eval_every: 100
  save_every: 100
  select_best: true
  early_stopping_patience: 2
  precision: bf16
  activation_checkpointing: true
  threads: 2
eval: {batch_size: 8, max_examples: 100, splits: [dev, test], write_predictions: false}
record: {log_every: 5, decomposition_every: 50, magnitudes: true}
sweep:
  train.lr: [1.0e-3, 2.0e-3]
  method.rank: [4, 8]
output: {dir: runs/x}
"""

SPEC_INCLUDE = """include: base.yaml
name: inc
model: {path: m.bin}
tasks: [{name: rte}]
train: {max_steps: 10}
"""

SPEC_OVERRIDES = SPEC_MINIMAL + """#--set
train.lr=0.5
methods.lora.rank=16
methods.1.alpha=4
sweep.train.lr=[0.1, 0.2]
seeds=[1, 2]
"""


SEEDS = {
    "fuzz_safetensors": {
        "one_f32.safetensors": safetensors([("w", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3))]),
        "all_dtypes.safetensors": safetensors([
            ("a", "F16", [2], struct.pack("<2e", 1.0, -0.5)),
            ("b", "BF16", [1], b"\x80\x3f"),
            ("c", "F64", [1], struct.pack("<d", 0.1)),
            ("d", "I64", [1], struct.pack("<q", -7)),
            ("e", "I32", [1], struct.pack("<i", 9)),
            ("f", "I16", [1], struct.pack("<h", -3)),
            ("g", "I8", [1], struct.pack("<b", -1)),
            ("h", "U8", [1], b"\xff"),
            ("i", "BOOL", [2], b"\x01\x00"),
        ]),
        "metadata.safetensors": safetensors([("x", "F32", [], struct.pack("<f", 42))], {"format": "pt", "k": "v"}),
        "empty_tensors.safetensors": safetensors([("z", "F32", [0, 3], b""), ("s", "U8", [1, 1, 1], b"\x07")]),
        "unpadded.safetensors": safetensors([("q", "I16", [3], struct.pack("<3h", 1, 2, 3))], pad=False),
        "no_tensors.safetensors": safetensors([]),
    },
    "fuzz_safetensors_index": {
        "index.json": json.dumps({"metadata": {"total_size": 0},
                                  "weight_map": {"a": "model-00001-of-00001.safetensors",
                                                 "b": "model-00001-of-00001.safetensors"}}).encode(),
        "escape.json": json.dumps({"weight_map": {"a": "../outside.safetensors"}}).encode(),
    },
    "fuzz_llama2c": {
        "tiny.bin": llama2c(4, 4, 1, 2, 2, 8, 4),
        "gqa_untied.bin": llama2c(8, 8, 1, 4, 2, 6, 2, tied=False),
        "two_layers.bin": llama2c(4, 6, 2, 1, 1, 5, 3),
    },
    "fuzz_spec": {
        "minimal.yaml": SPEC_MINIMAL.encode(),
        "full.yaml": SPEC_FULL.encode(),
        "include.yaml": SPEC_INCLUDE.encode(),
        "overrides.yaml": SPEC_OVERRIDES.encode(),
    },
    "fuzz_tsv": {
        "glue_header.tsv": b"\xef\xbb\xbfQuality\t#1 ID\t#2 ID\tString\n1\t702876\t702977\tsays \"hi\"\n0\t1\t2\t-3.5e2\n",
        "no_header_crlf.tsv": b"gj04\t1\t\tOur friends won't buy this.\r\ngj04\t0\t*\tThey drank the pub.\r\n",
        "two_columns.tsv": b"sentence\tlabel\nhello world\t1\n\t0\nnan\t1e400\n\n\n",
        "three_columns.tsv": b"a\tb\tc\n1\t2\t3",
    },
    "fuzz_csv": {
        "quoted.csv": b'id,text,label\n1,"a, b",0\n2,"line\none ""q""",1\n3,,2.5\n',
        "crlf.csv": b'"x","y"\r\n"1","2"\r\n3,4\r\n',
        "three_columns.csv": b"a,b,c\n1,2,3\n,,\n",
    },
    "fuzz_json": {
        "records.json": json.dumps([{"instruction": "Q?", "input": "", "output": "yes", "answer": "true"},
                                    {"instruction": "x", "answer": 3, "flag": False, "n": None}], indent=2).encode(),
        "one_line.json": b'[{"a":"1"},{"b":[1,2]},{"c":{"d":"e"}}]',
        "bom_escapes.json": b'\xef\xbb\xbf[\n  {"s": "quote \\" and \\\\ and \\u00e9", "x": 1.5e3}\n]\n',
    },
    "fuzz_jsonl": {
        "records.jsonl": b'{"question": "q1", "answer": "a"}\n{"question": "q2", "answer": 2}\n',
        "blank_lines_crlf.jsonl": b'\r\n{"a": true}\r\n\n  \n{"b": null, "c": [1]}\r\n',
    },
}


RUN_FILE_HEADER_BYTES = 512


def sealed(hdf5_bytes):
    """A run file as core/recorder.cpp publishes it: a 512-byte header (magic, SHA-256 and length of the HDF5
    bytes), then the HDF5 file itself (written with a 512-byte user block, which the header fills)."""
    body = hdf5_bytes[RUN_FILE_HEADER_BYTES:]
    header = b"peftlab run file\n" + b"sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n" + \
        b"bytes " + str(len(body)).encode() + b"\n"
    return header.ljust(RUN_FILE_HEADER_BYTES, b"\0") + body


def run_file(status, train_steps, with_layer):
    """An HDF5 run file laid out as docs/run-file.md says, with `train_steps` training rows."""
    import h5py
    import numpy as np
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", userblock_size=RUN_FILE_HEADER_BYTES) as f:
        for key, value in [("schema_version", 1), ("run_id", "sst2/lora/seed0"), ("status", status),
                           ("method", "lora"), ("method_label", "lora"), ("task", "sst2"), ("seed", 0),
                           ("spec", "experiment: x\nseed: 0\n"), ("headline_metric", "accuracy")]:
            f.attrs[key] = value
        steps = np.arange(1, train_steps + 1, dtype=np.int64)
        train = f.create_group("train")
        train.create_dataset("step", data=steps, maxshape=(None,), chunks=(16,))
        for name in ("loss", "lr", "grad_norm", "tokens_per_s"):
            train.create_dataset(name, data=np.linspace(1.0, 0.5, train_steps), maxshape=(None,), chunks=(16,))
        dev = f.create_group("eval").create_group("dev")
        dev.create_dataset("step", data=np.array([train_steps], dtype=np.int64), maxshape=(None,), chunks=(16,))
        dev.create_dataset("accuracy", data=np.array([0.75]), maxshape=(None,), chunks=(16,))
        layers = f.create_group("decomposition")
        if with_layer:
            layer = layers.create_group("layers.0.self_attn.q_proj")
            layer.create_dataset("step", data=np.array([0, train_steps], dtype=np.int64), maxshape=(None,), chunks=(16,))
            layer.create_dataset("dM", data=np.array([0.0, 0.1]), maxshape=(None,), chunks=(16,))
            layer.create_dataset("m_row", data=np.ones((2, 4)), maxshape=(None, 4), chunks=(16, 4))
        final = f.create_group("final").create_group("dev")
        final.attrs["accuracy"] = 0.75
    return buffer.getvalue()


def run_file_seeds():
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("make_corpus.py: no h5py here, fuzz_run_file's seeds are left as they are (use /usr/bin/python3)")
        return {}
    completed = sealed(run_file("completed", 5, True))
    damaged = bytearray(completed)
    for i in range(96, len(damaged), 97):  # every 97th byte flipped
        damaged[i] ^= 0xFF
    return {
        "completed.run": completed,
        "running_one_row.run": sealed(run_file("running", 1, False)),
        "damaged_every_97th_byte.run": bytes(damaged),
        "no_header.run": run_file("completed", 2, False)[RUN_FILE_HEADER_BYTES:],
    }


def main():
    SEEDS["fuzz_run_file"] = run_file_seeds()
    for target, files in SEEDS.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
