#!/usr/bin/python3
"""tokenizer_ref.py — the Python side of clipc's tokenizer tests, built on the plain-Python
SimpleTokenizer in benchmarks/data/simple_tokenizer_ref.py.

usage:
  tokenizer_ref.py roundtrip VOCAB_GZ TEXTS OUT   per line: ids <TAB> escaped decode(ids)
  tokenizer_ref.py decode VOCAB_GZ IDS OUT        per line of ids: escaped decode(ids)
  tokenizer_ref.py hf-files VOCAB_GZ OUTDIR       the same vocabulary as Hugging Face files
                                                  (vocab.json, merges.txt with a "#version" line)
  tokenizer_ref.py hf-encode DIR TEXTS OUT        ids per line, reading DIR/vocab.json + merges.txt
                                                  the way HF's slow CLIPTokenizer reads them
TEXTS lines are UTF-8 (invalid bytes replaced) with \\\\ \\t \\n \\r escaped; output text is escaped the same way.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "data"))
from simple_tokenizer_ref import SimpleTokenizer, read_lines  # noqa: E402


def escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "roundtrip":
        tok = SimpleTokenizer(vocab_gz=sys.argv[2])
        with open(sys.argv[3], "rb") as f, open(sys.argv[4], "w", encoding="utf-8", newline="\n") as out:
            for line in read_lines(f):
                ids = tok.encode(line)
                out.write(" ".join(map(str, ids)) + "\t" + escape(tok.decode(ids)) + "\n")
    elif mode == "decode":
        tok = SimpleTokenizer(vocab_gz=sys.argv[2])
        with open(sys.argv[3]) as f, open(sys.argv[4], "w", encoding="utf-8", newline="\n") as out:
            for line in f:
                out.write(escape(tok.decode([int(x) for x in line.split()])) + "\n")
    elif mode == "hf-files":
        tok = SimpleTokenizer(vocab_gz=sys.argv[2])
        os.makedirs(sys.argv[3], exist_ok=True)
        with open(os.path.join(sys.argv[3], "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(tok.encoder, f, ensure_ascii=False)
        ranked = sorted(tok.bpe_ranks.items(), key=lambda item: item[1])
        with open(os.path.join(sys.argv[3], "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for (left, right), _ in ranked:
                f.write(f"{left} {right}\n")
    elif mode == "hf-encode":
        tok = SimpleTokenizer(vocab_json=os.path.join(sys.argv[2], "vocab.json"),
                              merges_txt=os.path.join(sys.argv[2], "merges.txt"))
        with open(sys.argv[3], "rb") as f, open(sys.argv[4], "w") as out:
            for line in read_lines(f):
                out.write(" ".join(map(str, tok.encode(line))) + "\n")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
