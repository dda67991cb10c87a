#!/usr/bin/python3
"""simple_tokenizer_ref.py — openai/CLIP's SimpleTokenizer algorithm in plain Python, written for clipc
from the algorithm's description, with ftfy taken as identity. It is the peer of clipc's tokenizer in
benchmarks/data/run.sh and the second reference of tests/test_data_tokenizer.c.

As openai's code: text = lower(whitespace_clean(basic_clean(text))) where basic_clean = strip of
html.unescape(html.unescape(text)) and whitespace_clean = strip of `regex`.sub(r'\\s+', ' ', text);
pieces by the `regex` pattern below (IGNORECASE); each piece's UTF-8 bytes through GPT-2's
bytes_to_unicode, the last symbol with '</w>', then BPE merges by rank, with a dict cache of pieces.

usage as a tool:
  simple_tokenizer_ref.py encode VOCAB_GZ < texts     ids of each line (no start/end tokens)
  simple_tokenizer_ref.py bench VOCAB_GZ FILE REPEATS [--cold]
                                                      tokens/s over FILE's lines: warm = one untimed pass
                                                      fills the cache, then REPEATS timed passes; --cold =
                                                      one timed pass on a fresh tokenizer
Lines are read as UTF-8 with errors="replace" and "\\\\", "\\t", "\\n", "\\r" unescaped.
"""
import gzip
import html
import sys
import time

import regex

PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def bytes_to_unicode():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    stand_ins = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            stand_ins.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(c) for c in stand_ins]))


def pairs_of(word):
    return {(word[i], word[i + 1]) for i in range(len(word) - 1)}


def basic_clean(text):
    return html.unescape(html.unescape(text)).strip()


def whitespace_clean(text):
    return regex.sub(r"\s+", " ", text).strip()


class SimpleTokenizer:
    def __init__(self, vocab_gz=None, vocab_json=None, merges_txt=None):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        if vocab_gz:
            lines = gzip.open(vocab_gz).read().decode("utf-8").split("\n")
            merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
            vocab = list(self.byte_encoder.values())
            vocab = vocab + [v + "</w>" for v in vocab]
            vocab += ["".join(m) for m in merges]
            vocab += ["<|startoftext|>", "<|endoftext|>"]
            self.encoder = dict(zip(vocab, range(len(vocab))))
        else:  # Hugging Face files, read the way its slow CLIPTokenizer reads them
            import json
            with open(vocab_json, encoding="utf-8") as f:
                self.encoder = json.load(f)
            with open(merges_txt, encoding="utf-8") as f:
                lines = f.read().strip().split("\n")
            merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pattern = regex.compile(PATTERN, regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = pairs_of(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = pairs_of(word)
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text):
        ids = []
        text = whitespace_clean(basic_clean(text)).lower()
        for piece in regex.findall(self.pattern, text):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(piece).split(" "))
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        return bytearray([self.byte_decoder[c] for c in text]).decode("utf-8", errors="replace").replace("</w>", " ")


def unescape_line(line):
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(line[i + 1], line[i + 1]))
            i += 2
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def read_lines(stream):
    data = stream.read().decode("utf-8", errors="replace")
    return [unescape_line(line) for line in data.split("\n")[:-1]] if data.endswith("\n") else \
        [unescape_line(line) for line in data.split("\n")] if data else []


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    tok = SimpleTokenizer(vocab_gz=sys.argv[2])
    if sys.argv[1] == "encode":
        out = sys.stdout
        for line in read_lines(sys.stdin.buffer):
            out.write(" ".join(str(i) for i in tok.encode(line)) + "\n")
    elif sys.argv[1] == "bench":
        with open(sys.argv[3], "rb") as f:
            lines = read_lines(f)
        cold = len(sys.argv) > 5 and sys.argv[5] == "--cold"
        repeats = 1 if cold else int(sys.argv[4])
        for line in lines if not cold else []:  # warm the cache, as clipc's is warmed
            tok.encode(line)
        n_tokens = 0
        start = time.perf_counter()
        for _ in range(repeats):
            for line in lines:
                n_tokens += len(tok.encode(line))
        seconds = time.perf_counter() - start
        print(f"{n_tokens} tokens in {seconds:.3f} s: {n_tokens / seconds:.0f} tokens/s")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
