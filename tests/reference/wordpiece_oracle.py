#!/usr/bin/env python3
"""WordPiece ids, written from BERT's reference tokenizer (google-research/bert tokenization.py): the basic
tokenizer (drop control characters, whitespace to spaces, spaces around CJK ideographs, split on whitespace,
lower-case and strip accents, split off punctuation), then greedy longest-match-first WordPiece with "##"
continuations and [UNK] for a word with an unmatched part or over 100 characters. As in Hugging Face's BERT
tokenizers, the special tokens ([CLS], [SEP], ...) are found in the text first.

usage: wordpiece_oracle.py SAMPLES (--vocab-txt FILE | --tokenizer-json FILE); prints {sample name: [ids]}."""
import argparse
import json
import unicodedata

from oracle_common import print_ids, read_samples, split_on_tokens

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def is_chinese(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class Bert:
    def __init__(self, vocab, lower, strip_accents, chinese, unk="[UNK]", max_chars=100, prefix="##"):
        self.vocab, self.lower, self.strip_accents, self.chinese = vocab, lower, strip_accents, chinese
        self.unk, self.max_chars, self.prefix = unk, max_chars, prefix

    def basic(self, text):
        text = "".join(" " if is_whitespace(c) else c for c in text
                       if not (ord(c) == 0 or ord(c) == 0xFFFD or is_control(c)))
        if self.chinese:
            text = "".join(f" {c} " if is_chinese(ord(c)) else c for c in text)
        words = []
        for word in text.split():
            if self.lower:
                word = word.lower()
            if self.strip_accents:
                word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            current = ""
            for c in word:
                if is_punctuation(c):
                    if current:
                        words.append(current)
                    words.append(c)
                    current = ""
                else:
                    current += c
            if current:
                words.append(current)
        return words

    def wordpiece(self, word):
        if len(word) > self.max_chars:
            return [self.vocab[self.unk]]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                candidate = word[start:end] if start == 0 else self.prefix + word[start:end]
                if candidate in self.vocab:
                    found = self.vocab[candidate]
                    break
                end -= 1
            if found is None:
                return [self.vocab[self.unk]]
            ids.append(found)
            start = end
        return ids

    def encode(self, text):
        ids = []
        for piece, is_special in split_on_tokens(text, [s for s in SPECIALS if s in self.vocab]):
            if is_special:
                ids.append(self.vocab[piece])
            else:
                for word in self.basic(piece):
                    ids.extend(self.wordpiece(word))
        return ids


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("samples")
    parser.add_argument("--vocab-txt")
    parser.add_argument("--tokenizer-json")
    args = parser.parse_args()
    if args.vocab_txt:
        with open(args.vocab_txt, encoding="utf-8") as f:
            vocab = {line.rstrip("\r\n"): i for i, line in enumerate(f)}
        tok = Bert(vocab, True, True, True)
    else:
        with open(args.tokenizer_json, encoding="utf-8") as f:
            tj = json.load(f)
        n, m = tj["normalizer"], tj["model"]
        if n.get("type") != "BertNormalizer" or tj["pre_tokenizer"].get("type") != "BertPreTokenizer":
            raise SystemExit("oracle: only BertNormalizer + BertPreTokenizer are handled")
        lower = n.get("lowercase", True)
        strip = n.get("strip_accents")
        tok = Bert(m["vocab"], lower, lower if strip is None else strip, n.get("handle_chinese_chars", True),
                   m.get("unk_token", "[UNK]"), m.get("max_input_chars_per_word", 100),
                   m.get("continuing_subword_prefix", "##"))
    print_ids({s["name"]: tok.encode(s["text"]) for s in read_samples(args.samples)})


if __name__ == "__main__":
    main()
