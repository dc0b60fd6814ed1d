#!/usr/bin/env python3
"""Byte-level BPE ids, written from GPT-2's reference encoder (openai/gpt-2 src/encoder.py): each byte of a
regex piece stands for a printable character, then the bigram of lowest merge rank is merged everywhere in the
word until none has a rank. Reads vocab.json + merges.txt (with tokenizer_config.json for Qwen2's pattern, NFC
and added tokens), or the model, normalizer, pre-tokenizer and added tokens of a byte-level tokenizer.json.

usage: bytelevel_bpe_oracle.py SAMPLES (--vocab-merges VOCAB MERGES [--config CONFIG] | --tokenizer-json FILE)
prints {sample name: [ids]} as JSON."""
import argparse
import json
import unicodedata

import regex

from oracle_common import print_ids, read_samples, split_on_tokens

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def byte_alphabet():
    """byte -> the character standing for it: printable Latin-1 bytes for themselves, the rest from U+0100."""
    kept = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars = {b: chr(b) for b in kept}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return chars


class ByteLevelBpe:
    def __init__(self, vocab, merges, pattern, nfc, raw_tokens, normalized_tokens, add_prefix_space=False):
        self.vocab = vocab
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.pattern = regex.compile(pattern)
        self.nfc = nfc
        self.raw_tokens = raw_tokens  # content -> id, matched in the raw text
        self.normalized_tokens = normalized_tokens  # content -> id, matched after normalization
        self.add_prefix_space = add_prefix_space
        self.alphabet = byte_alphabet()

    def bpe(self, word):
        word = tuple(word)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    def encode_plain(self, text):
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        ids = []
        for piece in self.pattern.findall(text):
            mapped = "".join(self.alphabet[b] for b in piece.encode("utf-8"))
            ids.extend(self.vocab[t] for t in self.bpe(mapped))
        return ids

    def encode(self, text):
        ids = []
        for raw, is_token in split_on_tokens(text, list(self.raw_tokens)):
            if is_token:
                ids.append(self.raw_tokens[raw])
                continue
            if self.nfc:
                raw = unicodedata.normalize("NFC", raw)
            for piece, is_token in split_on_tokens(raw, list(self.normalized_tokens)):
                ids.extend([self.normalized_tokens[piece]] if is_token else self.encode_plain(piece))
        return ids


def from_vocab_merges(vocab_path, merges_path, config_path):
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    merges = []
    with open(merges_path, encoding="utf-8") as f:
        for number, line in enumerate(f):
            line = line.rstrip("\r\n")
            if not line or (number == 0 and line.startswith("#version")):
                continue
            merges.append(line.split(" "))
    config = {}
    if config_path:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    added = {t["content"]: int(i) for i, t in config.get("added_tokens_decoder", {}).items()}
    if not added and "<|endoftext|>" in vocab:
        added = {"<|endoftext|>": vocab["<|endoftext|>"]}
    qwen2 = config.get("tokenizer_class", "").startswith("Qwen2Tokenizer")
    return ByteLevelBpe(vocab, merges, QWEN2_PATTERN if qwen2 else GPT2_PATTERN, qwen2, added, {})


def from_tokenizer_json(path):
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj["model"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    normalizer = tj.get("normalizer")
    if normalizer not in (None, {"type": "NFC"}):
        raise SystemExit(f"oracle: normalizer {normalizer} not handled")
    pre = tj["pre_tokenizer"]
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        raise SystemExit(f"oracle: pre_tokenizer {pre} not handled")
    raw = {t["content"]: t["id"] for t in tj.get("added_tokens", []) if not t.get("normalized", not t["special"])}
    normalized = {t["content"]: t["id"] for t in tj.get("added_tokens", []) if t.get("normalized", not t["special"])}
    return ByteLevelBpe(model["vocab"], merges, GPT2_PATTERN, normalizer is not None, raw, normalized,
                        pre.get("add_prefix_space", True))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("samples")
    parser.add_argument("--vocab-merges", nargs=2)
    parser.add_argument("--config")
    parser.add_argument("--tokenizer-json")
    args = parser.parse_args()
    if args.vocab_merges:
        tok = from_vocab_merges(args.vocab_merges[0], args.vocab_merges[1], args.config)
    else:
        tok = from_tokenizer_json(args.tokenizer_json)
    print_ids({s["name"]: tok.encode(s["text"]) for s in read_samples(args.samples)})


if __name__ == "__main__":
    main()
