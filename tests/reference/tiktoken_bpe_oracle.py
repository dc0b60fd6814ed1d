#!/usr/bin/env python3
"""Rank-based BPE ids of a tiktoken-format file (Llama 3's tokenizer.model), written from tiktoken's
educational encoder (openai/tiktoken tiktoken/_educational.py): a regex piece that is itself a token is that
token; otherwise its bytes are merged, pair of lowest rank first (leftmost on ties), while some adjacent pair
joins into a token. Special tokens are found in the text first: those of tokenizer_config.json's
added_tokens_decoder, else Meta's 256 Llama 3 special tokens after the ranks.

usage: tiktoken_bpe_oracle.py SAMPLES MODEL [--config CONFIG]; prints {sample name: [ids]} as JSON."""
import argparse
import base64
import json

import regex

from oracle_common import print_ids, read_samples, split_on_tokens

# Llama 3's pattern (Meta's llama3 tokenizer.py; tiktoken's cl100k_base).
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def meta_special_tokens():
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
             "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>",
             "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    return names + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]


def bpe_ranks(ranks, piece):
    if piece in ranks:
        return [ranks[piece]]
    parts = [bytes([b]) for b in piece]
    while True:
        best_rank, best_at = None, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best_at = rank, i
        if best_rank is None:
            break
        parts = parts[:best_at] + [parts[best_at] + parts[best_at + 1]] + parts[best_at + 2:]
    return [ranks[p] for p in parts]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("samples")
    parser.add_argument("model")
    parser.add_argument("--config")
    args = parser.parse_args()
    ranks = {}
    with open(args.model, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    specials = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            specials = {t["content"]: int(i) for i, t in json.load(f).get("added_tokens_decoder", {}).items()}
    if not specials:
        specials = {name: len(ranks) + i for i, name in enumerate(meta_special_tokens())}
    pattern = regex.compile(LLAMA3_PATTERN)

    def encode(text):
        ids = []
        for piece, is_special in split_on_tokens(text, list(specials)):
            if is_special:
                ids.append(specials[piece])
            else:
                for chunk in pattern.findall(piece):
                    ids.extend(bpe_ranks(ranks, chunk.encode("utf-8")))
        return ids

    print_ids({s["name"]: encode(s["text"]) for s in read_samples(args.samples)})


if __name__ == "__main__":
    main()
