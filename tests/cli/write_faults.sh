#!/bin/sh
# write_faults.sh — a full disk and unwritable output folders for every writer: index build / add /
# remove (from vectors and from images), embed --out, export, train. Each must fail with exit status 1,
# an error naming the file, the previous file byte for byte as it was, and no temporary file left.
# A full disk is a file-size limit (ulimit -f: writes fail with EFBIG, SIGXFSZ ignored); an unwritable
# folder is a path through a regular file (ENOTDIR), and a read-only folder when not running as root.
set -eu
cd "$TMPDIR"
PY=/usr/bin/python3
fail() {
    echo "FAIL: $*"
    exit 1
}
# full BLOCKS command...: runs the command with files limited to BLOCKS x 512 bytes; prints its stderr
# (through a pipe, which the limit does not touch) and returns its status
full() {
    blocks=$1
    shift
    sh -c 'trap "" XFSZ; ulimit -f "$0"; exec "$@"' "$blocks" "$@" 2>&1 >/dev/null
}
# expect_failure WHAT FILE_NAMED STATUS MESSAGE: the command failed cleanly and named the file
expect_failure() {
    [ "$3" = 1 ] || fail "$1: exit status $3 (want 1): $4"
    case "$4" in *"$2"*) ;; *) fail "$1: the error does not name $2: $4" ;; esac
}
no_temp_files() { # dir
    left=$(find "$1" -name '*.tmp.*' | head -n 3)
    [ -z "$left" ] || fail "temporary files left behind: $left"
}

cat >micro.json <<'EOF'
{"text_config": {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
  "num_attention_heads": 2, "max_position_embeddings": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05,
  "eos_token_id": 2},
 "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
  "image_size": 32, "patch_size": 8, "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05},
 "projection_dim": 16, "logit_scale_init_value": 2.6592, "model_type": "clip"}
EOF
"$CLIPC" synth --out syn --count 40 --size 32 --seed 9 --quiet >/dev/null
TRAIN="train --arch micro.json --merges 100 --threads 2 --quiet --data syn/pairs.tsv --batch 8 --save-every 2 --seed 3"
"$CLIPC" $TRAIN --steps 4 --out run >/dev/null
model=run/model
$PY - <<'EOF'
import numpy as np
x = np.random.default_rng().standard_normal((5000, 32)).astype(np.float32)
np.save("x.npy", x[:4000]); np.save("more.npy", x[4000:]); np.save("rm.npy", np.arange(0, 4000, 3, dtype=np.int64))
EOF
"$CLIPC" index build --type HNSW16 --vectors x.npy --out good.idx --quiet >/dev/null
cp good.idx good.copy
"$CLIPC" index build --model $model --images syn/images --out img.idx --quiet >/dev/null
cp img.idx img.copy
"$CLIPC" embed --model $model --text "a red circle" "a blue square" --out e.npy --quiet >/dev/null
cp e.npy e.copy
"$CLIPC" export --checkpoint run/checkpoints/step_0000002.safetensors --out exported --quiet >/dev/null
cp exported/model.safetensors exported.copy

# ---------------------------------------------------------------- a full disk
status=0; err=$(full 100 "$CLIPC" index build --type HNSW16 --vectors x.npy --out good.idx) || status=$?
expect_failure "index build, full disk" good.idx "$status" "$err"
status=0; err=$(full 100 "$CLIPC" index add --index good.idx --vectors more.npy) || status=$?
expect_failure "index add, full disk" good.idx "$status" "$err"
status=0; err=$(full 100 "$CLIPC" index remove --index good.idx --ids rm.npy) || status=$?
expect_failure "index remove, full disk" good.idx "$status" "$err"
cmp -s good.idx good.copy || fail "a failed write changed good.idx"
rm -f img.idx.cache
status=0; err=$(full 2 "$CLIPC" index build --model $model --images syn/images --out img.idx --type HNSW16) || status=$?
expect_failure "index build from images, full disk" img.idx "$status" "$err"
cmp -s img.idx img.copy || fail "a failed build changed img.idx"
status=0; err=$(full 0 "$CLIPC" embed --model $model --text "a green star" --out e.npy) || status=$?
expect_failure "embed --out, full disk" e.npy "$status" "$err"
cmp -s e.npy e.copy || fail "a failed embed changed e.npy"
status=0; err=$(full 0 "$CLIPC" export --checkpoint run/checkpoints/step_0000004.safetensors --out exported) || status=$?
expect_failure "export, full disk" model.safetensors "$status" "$err"
cmp -s exported/model.safetensors exported.copy || fail "a failed export changed model.safetensors"
cp -r run run2
latest=$(cat run2/checkpoints/latest)
status=0; err=$(full 100 "$CLIPC" $TRAIN --steps 6 --out run2 --resume) || status=$?
expect_failure "train, full disk" run2/ "$status" "$err"
test "$(cat run2/checkpoints/latest)" = "$latest" || fail "a failed train moved latest"
cmp -s run2/checkpoints/$latest run/checkpoints/$latest || fail "a failed train changed $latest"
no_temp_files .

# ---------------------------------------------------------------- output folders that cannot be written
: >afile
for cmd in "index build --type Flat --vectors x.npy --out afile/x.idx" "index add --index good.idx --vectors more.npy --out afile/x.idx" \
    "index remove --index good.idx --ids rm.npy --out afile/x.idx" "embed --model $model --text hello --out afile/e.npy" \
    "export --checkpoint run/checkpoints/step_0000004.safetensors --out afile/model" "$TRAIN --steps 2 --out afile/run"; do
    status=0; err=$("$CLIPC" $cmd 2>&1 >/dev/null) || status=$?
    expect_failure "$cmd" afile/ "$status" "$err"
done
if [ "$(id -u)" != 0 ]; then # permissions do not stop root
    mkdir ro && cp good.idx ro/x.idx && chmod 555 ro
    status=0; err=$("$CLIPC" index add --index ro/x.idx --vectors more.npy 2>&1 >/dev/null) || status=$?
    chmod 755 ro
    expect_failure "index add in a read-only folder" ro/x.idx "$status" "$err"
    cmp -s ro/x.idx good.idx || fail "a failed add changed ro/x.idx"
fi
cmp -s good.idx good.copy || fail "good.idx changed"
no_temp_files .
"$CLIPC" index info good.idx >/dev/null
echo "write faults ok"
