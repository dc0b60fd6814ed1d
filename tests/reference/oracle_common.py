"""Shared pieces of the tokenizer oracles: reading the samples, printing ids, and cutting text at special
tokens (the longest token at the leftmost position first, as Hugging Face tokenizers find added tokens)."""
import json
import sys

import regex  # Debian's python3-regex: \p{L} and friends


def read_samples(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def print_ids(ids_by_name):
    json.dump(ids_by_name, sys.stdout)
    sys.stdout.write("\n")


def split_on_tokens(text, tokens):
    """Pieces of `text` as (string, is_token). `tokens` are literal strings."""
    if not tokens:
        return [(text, False)] if text else []
    # Python's alternation takes the first alternative that matches: longest first gives the longest match.
    alternation = "|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True))
    pieces, last = [], 0
    for m in regex.finditer(alternation, text):
        if m.start() > last:
            pieces.append((text[last:m.start()], False))
        pieces.append((m.group(0), True))
        last = m.end()
    if last < len(text):
        pieces.append((text[last:], False))
    return pieces
