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
