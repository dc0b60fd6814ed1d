#!/usr/bin/env python3
"""SentencePiece-style BPE ids of a tokenizer.json like Llama 2's, written from the BPE model of Hugging Face's
tokenizers: the text between special tokens gets "▁" put before it and its spaces made "▁" (the Prepend and
Replace normalizers); a character outside the vocabulary becomes its bytes' <0xNN> tokens (byte fallback), or
[unk] (fused over a run) without; then the adjacent pair of lowest merge rank, leftmost first, is merged until
no pair has a merge.

usage: sentencepiece_bpe_oracle.py SAMPLES TOKENIZER_JSON; prints {sample name: [ids]} as JSON."""
import argparse
import json

from oracle_common import print_ids, read_samples, split_on_tokens


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("samples")
    parser.add_argument("tokenizer_json")
    args = parser.parse_args()
    with open(args.tokenizer_json, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj["model"]
    vocab = model["vocab"]
    ranks = {}
    for i, m in enumerate(model["merges"]):
        left, right = m.split(" ") if isinstance(m, str) else m
        ranks[(left, right)] = i
    expected_normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                               {"type": "Replace", "pattern": {"String": " "},
                                                                "content": "\u2581"}]}
    if tj["normalizer"] != expected_normalizer or tj["pre_tokenizer"] is not None:
        raise SystemExit("oracle: only Llama 2's normalizer and no pre-tokenizer are handled")
    specials = {t["content"]: t["id"] for t in tj["added_tokens"]}
    unk = model.get("unk_token")

    def bpe(text):
        symbols = []
        unknown_run = False
        for c in text:
            if c in vocab:
                symbols.append(c)
                unknown_run = False
            elif model.get("byte_fallback") and all(f"<0x{b:02X}>" in vocab for b in c.encode("utf-8")):
                symbols.extend(f"<0x{b:02X}>" for b in c.encode("utf-8"))
                unknown_run = False
            elif unk is not None:
                if not (model.get("fuse_unk") and unknown_run):
                    symbols.append(unk)
                unknown_run = True
        while True:
            best = None
            for i in range(len(symbols) - 1):
                rank = ranks.get((symbols[i], symbols[i + 1]))
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, i)
            if best is None:
                break
            i = best[1]
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        return [vocab[s] for s in symbols]

    def encode(text):
        ids = []
        for piece, is_special in split_on_tokens(text, list(specials)):
            if is_special:
                ids.append(specials[piece])
            elif piece:
                ids.extend(bpe("\u2581" + piece.replace(" ", "\u2581")))
        return ids

    print_ids({s["name"]: encode(s["text"]) for s in read_samples(args.samples)})


if __name__ == "__main__":
    main()
