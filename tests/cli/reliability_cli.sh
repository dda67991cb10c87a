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

# ---- --multiscale sizes whose patch grid needs gigabytes of attention scratch: refused up front,
# naming the largest size the model takes (the test model has patches of 6: 64 x 6 = 384)
set +e
err=$($CLIPC index build --model "$model" --images syn/images --multiscale 36,4092 --out ms.idx --no-cache --quiet 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && [ ! -e ms.idx ] || fail "--multiscale 36,4092: exit $rc: $err"
echo "$err" | grep -q "multiscale.*image size 4092.*up to 384" || fail "--multiscale 36,4092: $err"
$CLIPC index build --model "$model" --images syn/images --multiscale 36,72 --out ms.idx --no-cache --quiet >/dev/null 2>&1 ||
    fail "--multiscale 36,72 refused"

# ---- --meta times beyond years 0..9999 are refused (naming the line); decay ages never overflow,
# even from --now at the end of int64 (the sanitized build, when there, checks for UB); --decay 0x10
# (hex) is no number
SAN_CLIPC="$CLIPC_SRC/build-asan/clipc"
[ -x "$SAN_CLIPC" ] || SAN_CLIPC=$CLIPC
printf 'a red circle\na blue square\na green star\n' >caps.txt
printf 'a blue square\t0\na red circle\t9223372036854775807\n' >times_bad.tsv
set +e
err=$($CLIPC index build --model "$model" --texts caps.txt --meta times_bad.tsv --out t.idx --quiet 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] && [ ! -e t.idx ] || fail "--meta with time 2^63-1: exit $rc: $err"
echo "$err" | grep -q "times_bad.tsv:2" || fail "--meta error does not name the line: $err"
printf 'a red circle\t253402300799\na blue square\t-62135596800\na green star\t9999-12-31T23:59:59Z\n' >times.tsv
$CLIPC index build --model "$model" --texts caps.txt --meta times.tsv --out t.idx --quiet >/dev/null 2>&1 ||
    fail "--meta with times at the ends of the range refused"
for now in 9223372036854775807 -9223372036854775808; do
    ASAN_OPTIONS=detect_leaks=0 $SAN_CLIPC search --index t.idx --text "a red circle" --k 3 --decay 1 --now $now >out.txt 2>&1 ||
        fail "decay from --now $now: $(cat out.txt)"
done
set +e
err=$($CLIPC search --index t.idx --text "a red circle" --k 3 --decay 0x10 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] && echo "$err" | grep -q "expects a number" || fail "--decay 0x10: exit $rc: $err"

# ---- ids near INT64_MAX: build refuses INT64_MAX (the next id would overflow, the file would not
# load); add after INT64_MAX - 1 fails and leaves the index as it was
$PY - <<'PYEOF'
import numpy as np
x = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
np.save("v8.npy", x); np.save("v2.npy", x[:2])
np.save("ids_max.npy", np.array(list(range(7)) + [2**63 - 1], np.int64))
np.save("ids_near.npy", np.array(list(range(7)) + [2**63 - 2], np.int64))
PYEOF
for type in Flat HNSW8; do
    set +e
    err=$($CLIPC index build --type $type --vectors v8.npy --ids ids_max.npy --out max.idx --quiet 2>&1)
    rc=$?
    set -e
    [ $rc -ne 0 ] && [ ! -e max.idx ] || fail "$type: build with id INT64_MAX: exit $rc: $err"
    echo "$err" | grep -q "9223372036854775806" || fail "$type: error does not give the id range: $err"
    $CLIPC index build --type $type --vectors v8.npy --ids ids_near.npy --out near.idx --quiet >/dev/null
    cp near.idx near.orig
    set +e
    err=$($CLIPC index add --index near.idx --vectors v2.npy 2>&1)
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "$type: add after id INT64_MAX - 1 succeeded: $err"
    echo "$err" | grep -q "largest id" || fail "$type: add error: $err"
    cmp -s near.idx near.orig || fail "$type: add changed the index"
    $CLIPC index info near.idx >/dev/null || fail "$type: the index no longer loads"
    rm -f near.idx near.orig
done

# ---- a run with a relative --out: the checkpoint records the tokenizer's absolute path, so --resume
# and export work from another working directory; an export that fails leaves no model directory
$CLIPC synth --out small --count 40 --seed "$seed" --quiet >/dev/null
mkdir -p work elsewhere
(cd work && $CLIPC train --arch tiny --merges 50 --threads 2 --quiet --data ../small/pairs.tsv --out rel --steps 2 \
    --batch 8 --save-every 2 --seed 1 >/dev/null) || fail "train with a relative --out"
ckpt="$TMPDIR/work/rel/checkpoints/step_0000002.safetensors"
[ -f "$ckpt" ] || fail "no checkpoint: $(ls work/rel/checkpoints)"
(cd elsewhere && $CLIPC export --checkpoint "$ckpt" --out "$TMPDIR/exported" >/dev/null) || fail "export from another directory"
[ -f exported/model.safetensors ] && [ -f exported/vocab.json ] && [ -f exported/merges.txt ] || fail "export: $(ls exported)"
(cd elsewhere && $CLIPC train --arch tiny --merges 50 --threads 2 --quiet --data "$TMPDIR/small/pairs.tsv" \
    --out "$TMPDIR/work/rel" --steps 3 --batch 8 --save-every 2 --seed 1 --resume >/dev/null 2>"$TMPDIR/resume.err") ||
    fail "--resume from another directory: $(cat "$TMPDIR/resume.err")"
set +e
err=$(cd elsewhere && $CLIPC export --checkpoint "$ckpt" --tokenizer "$TMPDIR/no-such-dir" --out "$TMPDIR/half" 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "export with a missing tokenizer succeeded"
[ ! -e half ] || fail "a failed export left $(ls half)"
ls | grep -q "half.tmp" && fail "a failed export left its temporary directory"

# ---- --loss-log after --resume: steps past the checkpoint (trained again) are not logged twice
train_ll() { $CLIPC train --arch tiny --merges 50 --threads 2 --quiet --data small/pairs.tsv --out ll --batch 8 --seed 1 \
    --save-every 2 --loss-log ll.txt "$@" >/dev/null; }
train_ll --steps 3
rm ll/checkpoints/step_0000003.safetensors
echo step_0000002.safetensors >ll/checkpoints/latest
train_ll --steps 4 --resume
[ "$(cut -d' ' -f1 ll.txt | tr '\n' ' ')" = "1 2 3 4 " ] || fail "--loss-log after resume: $(cat ll.txt)"

# ---- a checkpoint whose optimizer_step is near INT64_MAX (or not a number) is refused on resume
$PY - ll/checkpoints/step_0000004.safetensors <<'PYEOF'
import json, struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
for value, name in (("9223372036854775806", "huge"), ("-5", "negative"), ("0x10", "hex")):
    header["__metadata__"]["optimizer_step"] = value
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    open(f"ll_{name}.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
PYEOF
for name in huge negative hex; do
    rm -rf bad_$name && mkdir -p bad_$name/checkpoints
    cp ll_$name.safetensors bad_$name/checkpoints/step_0000004.safetensors
    echo step_0000004.safetensors >bad_$name/checkpoints/latest
    set +e
    err=$($CLIPC train --arch tiny --merges 50 --threads 2 --quiet --data small/pairs.tsv --out bad_$name --batch 8 \
        --seed 1 --steps 6 --resume 2>&1)
    rc=$?
    set -e
    [ $rc -ne 0 ] && echo "$err" | grep -q "optimizer_step" || fail "optimizer_step $name: exit $rc: $err"
done

# ---- a validation set with one readable image: val_loss (no batch of two) is null, not NaN (the log
# stays JSON), and the unreadable validation images are counted
first=$(sed -n 2p small/pairs.tsv | cut -f1)
printf 'image\tcaption\n%s\ta cat\nnope2.png\ta dog\nnope3.png\ta cow\n' "$TMPDIR/small/$first" >badval.tsv
$CLIPC train --arch tiny --merges 50 --threads 2 --quiet --data small/pairs.tsv --val-data badval.tsv --out bv --steps 1 \
    --batch 8 --seed 1 >/dev/null 2>bv.err || fail "train with a mostly unreadable validation set: $(cat bv.err)"
$PY - <<'PYEOF' || fail "train_log.jsonl: $(cat bv/train_log.jsonl)"
import json
for line in open("bv/train_log.jsonl"):
    rec = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert rec["val_loss"] is None and rec["val_skipped_images"] == 2, rec
PYEOF

# ---- errors that say what is wrong: a 0-column .npy, --k beyond its limit, a 20000x1 image (its
# resize to the model's size is too wide) named in the error
$PY -c "import numpy as np; np.save('cols0.npy', np.zeros((5, 0), np.float32))"
err=$($CLIPC index build --type Flat --vectors cols0.npy --out c0.idx --quiet 2>&1) && fail "0-column vectors accepted"
echo "$err" | grep -q "cols0.npy: vectors have dimension 0" || fail "0-column error: $err"
$CLIPC index build --type Flat --vectors v8.npy --out v8.idx --quiet >/dev/null
err=$($CLIPC index search --index v8.idx --queries v2.npy --k 1000000000 --out I.npy 2>&1) && fail "--k 1e9 accepted"
echo "$err" | grep -q "k must be between 1 and 100000" || fail "--k error: $err"
$PY -c "
from PIL import Image
Image.new('RGB', (20000, 1)).save('wide.jpg'); Image.new('RGB', (20000, 1)).save('wide.png')"
for f in wide.jpg wide.png; do
    err=$($CLIPC search --index t.idx --image $f --k 1 2>&1) && fail "search --image $f accepted"
    echo "$err" | grep -q "$f: preprocess: a 20000x1 image" || fail "search --image $f: $err"
    err=$($CLIPC embed --model "$model" --image $f --out e.npy 2>&1) && fail "embed --image $f accepted"
    echo "$err" | grep -q "$f" || fail "embed --image $f: $err"
done

echo "reliability_cli: all passed"
