#!/bin/sh
# data_synth_learn.sh — `clipc synth` writes a deterministic dataset (images + pairs.tsv, COCO and
# Karpathy JSON); `clipc tokenizer-learn` learns a vocabulary from it that `clipc tokenize --model` reads
# and that round-trips through --decode.
set -eu
"$CLIPC" synth --out "$TMPDIR/a" --count 24 --seed 5 --size 32 --coco --karpathy --quiet
"$CLIPC" synth --out "$TMPDIR/b" --count 24 --seed 5 --size 32 --coco --karpathy --quiet
diff -r "$TMPDIR/a" "$TMPDIR/b"
"$CLIPC" synth --out "$TMPDIR/c" --count 24 --seed 6 --size 32 --quiet
if cmp -s "$TMPDIR/a/pairs.tsv" "$TMPDIR/c/pairs.tsv"; then echo "another seed gave the same captions"; exit 1; fi
test "$(head -n 1 "$TMPDIR/a/pairs.tsv")" = "$(printf 'image\tcaption')"
test "$(wc -l < "$TMPDIR/a/pairs.tsv")" = 25
test -f "$TMPDIR/a/images/000023.png"
grep -q '"annotations"' "$TMPDIR/a/captions_coco.json"
grep -q '"sentences"' "$TMPDIR/a/dataset_karpathy.json"
"$CLIPC" synth --out "$TMPDIR/j" --count 2 --jpeg --quiet
test -f "$TMPDIR/j/images/000001.jpg"
# learn a vocabulary and use it
"$CLIPC" tokenizer-learn --data "$TMPDIR/a/pairs.tsv" --merges 150 --out "$TMPDIR/vocab" --quiet
head -n 1 "$TMPDIR/vocab/merges.txt" | grep -q '^#version'
caption=$(sed -n 2p "$TMPDIR/a/pairs.tsv" | cut -f 2)
ids=$(echo "$caption" | "$CLIPC" tokenize --model "$TMPDIR/vocab")
test -n "$ids"
test "$(echo "$ids" | "$CLIPC" tokenize --model "$TMPDIR/vocab" --decode)" = "$caption "
# the learned vocabulary compresses the captions it was learned from
test "$(echo "$ids" | wc -w)" -lt "$(printf '%s' "$caption" | wc -c)"
# bad usage
if "$CLIPC" synth --out "$TMPDIR/x" 2> /dev/null; then exit 1; fi
if "$CLIPC" synth --out "$TMPDIR/x" --count 5 --size 2 2> /dev/null; then exit 1; fi
if "$CLIPC" tokenizer-learn --data "$TMPDIR/missing.tsv" --merges 10 --out "$TMPDIR/v" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "missing.tsv" "$TMPDIR/err"
