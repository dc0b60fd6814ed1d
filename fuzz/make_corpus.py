#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ with struct + json only (no peftlab code). Deterministic.

Run from the repository root: python3 fuzz/make_corpus.py
"""
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


def main():
    for target, files in SEEDS.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
