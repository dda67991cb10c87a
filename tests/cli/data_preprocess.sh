#!/bin/sh
# data_preprocess.sh — `clipc preprocess` writes a float32 [3, S, S] .npy (size from --size or from
# a model directory's preprocessor_config.json); bad images fail with the file named.
set -eu
"$CLIPC" synth --out "$TMPDIR/d" --count 2 --size 50 --quiet
img="$TMPDIR/d/images/000000.png"
npy_bytes() { # header (128 bytes for these shapes) + data
    echo $((128 + $1))
}
"$CLIPC" preprocess --image "$img" --out "$TMPDIR/x.npy"
test "$(wc -c < "$TMPDIR/x.npy")" = "$(npy_bytes $((3 * 224 * 224 * 4)))"
"$CLIPC" preprocess --image "$img" --size 32 --out "$TMPDIR/y.npy"
test "$(wc -c < "$TMPDIR/y.npy")" = "$(npy_bytes $((3 * 32 * 32 * 4)))"
head -c 60 "$TMPDIR/y.npy" | grep -q "'descr': '<f4'"
"$CLIPC" preprocess --image "$img" --size 32 --style hf --out "$TMPDIR/h.npy"
"$CLIPC" preprocess --image "$img" --size 32 --uint8 --out "$TMPDIR/u.npy"
test "$(wc -c < "$TMPDIR/u.npy")" = "$(npy_bytes $((3 * 32 * 32)))"
mkdir -p "$TMPDIR/model"
printf '{"size": {"shortest_edge": 40}, "crop_size": {"height": 40, "width": 40}}\n' > "$TMPDIR/model/preprocessor_config.json"
"$CLIPC" preprocess --image "$img" --model "$TMPDIR/model" --out "$TMPDIR/m.npy"
test "$(wc -c < "$TMPDIR/m.npy")" = "$(npy_bytes $((3 * 40 * 40 * 4)))"
# JPEG with --fast-decode
"$CLIPC" synth --out "$TMPDIR/j" --count 1 --size 600 --jpeg --quiet
"$CLIPC" preprocess --image "$TMPDIR/j/images/000000.jpg" --fast-decode --out "$TMPDIR/f.npy"
# bad input: missing, not an image, truncated; the old output is kept
cp "$TMPDIR/x.npy" "$TMPDIR/keep.npy"
if "$CLIPC" preprocess --image "$TMPDIR/none.png" --out "$TMPDIR/keep.npy" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "none.png" "$TMPDIR/err"
cmp "$TMPDIR/x.npy" "$TMPDIR/keep.npy"
if "$CLIPC" preprocess --image "$TMPDIR/d/pairs.tsv" --out "$TMPDIR/z.npy" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "not a JPEG, PNG, WebP, GIF, BMP or TIFF" "$TMPDIR/err"
head -c 300 "$TMPDIR/j/images/000000.jpg" > "$TMPDIR/cut.jpg"
if "$CLIPC" preprocess --image "$TMPDIR/cut.jpg" --out "$TMPDIR/z.npy" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "cut.jpg" "$TMPDIR/err"
if "$CLIPC" preprocess --image "$img" 2> /dev/null; then exit 1; fi
if "$CLIPC" preprocess --image "$img" --size 32 --model "$TMPDIR/model" --out "$TMPDIR/z.npy" 2> /dev/null; then exit 1; fi
