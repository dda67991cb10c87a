#!/bin/sh
# kill9.sh — kill -9 at random moments never loses or damages a saved file:
#   train (a checkpoint every step): after each kill, `latest` names a checkpoint that loads, every
#     checkpoint loads, and `train --resume` carries on; the run finished through the kills ends with
#     exactly the model of an uninterrupted run;
#   index build / add / remove (from vectors, and from images with the embedding cache): after each kill
#     the index file is either the previous one, byte for byte, or the complete new one (it loads,
#     searches, and holds the right count); the cache loads too.
# Small data and a micro model; a fixed number of iterations with random delays, each bounded.
set -eu
cd "$TMPDIR"
PY=/usr/bin/python3
fail() {
    echo "FAIL: $*"
    exit 1
}
random_delay() { # max_ms: a random number of seconds in [0, max_ms] ms, as "S.mmm"
    r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    ms=$((r % ($1 + 1)))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
# Milliseconds the command takes to run to its end (output discarded). Kill delays are drawn below
# half of it, so that kills land inside the run on a fast machine as on a loaded one.
duration_ms() {
    t_start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    t_ms=$((($(date +%s%N) - t_start) / 1000000))
    [ $t_ms -ge 10 ] || t_ms=10
    echo $t_ms
}
# Runs the command in the background, kills it with SIGKILL after a random delay (if still running).
# Sets $killed to 1 when the kill happened.
run_and_kill() { # max_ms, command...
    max=$1
    shift
    "$@" >/dev/null 2>&1 & # a command, never a shell function (the kill must reach the process)
    p=$!
    sleep "$(random_delay "$max")"
    killed=0
    if kill -9 $p 2>/dev/null; then killed=1; fi
    wait $p 2>/dev/null || true
}

cat >micro.json <<'EOF'
{"text_config": {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
  "num_attention_heads": 2, "max_position_embeddings": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05,
  "eos_token_id": 2},
 "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
  "image_size": 32, "patch_size": 8, "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05},
 "projection_dim": 16, "logit_scale_init_value": 2.6592, "model_type": "clip"}
EOF
"$CLIPC" synth --out syn --count 64 --size 32 --seed 5 --quiet >/dev/null

# ---------------------------------------------------------------- train
STEPS=40
# (a variable, not a function: run_and_kill must kill clipc itself, not a subshell around it)
TRAIN="train --arch micro.json --merges 100 --threads 2 --quiet --data syn/pairs.tsv --steps $STEPS --batch 8 --save-every 1 --seed 11"
train_ms=$(duration_ms "$CLIPC" $TRAIN --out straight)
test -f straight/model/model.safetensors || fail "the uninterrupted training run failed"
t0=$(date +%s)
check_checkpoints() { # out dir: latest names a checkpoint that loads; every checkpoint loads
    dir=$1/checkpoints
    [ -d "$dir" ] || return 0 # killed before the first checkpoint
    if [ -e "$dir/latest" ]; then
        name=$(cat "$dir/latest")
        [ -f "$dir/$name" ] || fail "latest names $name, which does not exist: $(ls "$dir")"
    fi
    for f in "$dir"/step_*.safetensors; do
        [ -e "$f" ] || continue
        rm -rf loaded
        "$CLIPC" export --checkpoint "$f" --out loaded --quiet >/dev/null 2>err.txt || fail "$f does not load: $(cat err.txt)"
    done
}
kills=0
for i in 1 2 3 4 5 6; do
    run_and_kill $((train_ms / 2)) "$CLIPC" $TRAIN --out killed_run --resume
    kills=$((kills + killed))
    check_checkpoints killed_run
done
"$CLIPC" $TRAIN --out killed_run --resume >resume.log || fail "train --resume after the kills failed"
test "$(cat killed_run/checkpoints/latest)" = "step_00000$STEPS.safetensors" || fail "resumed run did not reach step $STEPS"
cmp -s straight/model/model.safetensors killed_run/model/model.safetensors ||
    fail "the run resumed through $kills kills ended with another model than the uninterrupted run"
[ $kills -gt 0 ] || fail "no train run was killed (it finished before every kill)"
echo "train: $kills kills, resumed to the same model ($(($(date +%s) - t0)) s)"

# ---------------------------------------------------------------- index build / add / remove
$PY - <<'EOF'
import numpy as np
rng = np.random.default_rng()
x = rng.standard_normal((6000, 32)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
np.save("x.npy", x[:5000]); np.save("y.npy", x[:4000]); np.save("more.npy", x[5000:])
np.save("rm.npy", np.arange(0, 5000, 7, dtype=np.int64)); np.save("q.npy", x[:5]); np.save("q16.npy", x[:5, :16])
EOF
"$CLIPC" index build --type HNSW16 --vectors x.npy --out base.idx --quiet >/dev/null
count() { "$CLIPC" index info "$1" | sed -n 's/^ *vectors: *\([0-9]*\).*/\1/p'; }
test "$(count base.idx)" = 5000 || fail "base index: $("$CLIPC" index info base.idx)"
n_removed=$($PY -c "import numpy as np; print(len(np.load('rm.npy')))")
# after a kill the file is the old one or a complete new one with the given count
check_index() { # file, old copy, new count, what[, queries]
    if cmp -s "$1" "$2"; then return 0; fi
    queries=${5:-q.npy}
    c=$(count "$1" 2>err.txt) || fail "$4: the index does not load after kill -9: $(cat err.txt)"
    test "$c" = "$3" || fail "$4: $c vectors after kill -9, expected $3"
    "$CLIPC" index search --index "$1" --queries "$queries" --k 3 --out I.npy >/dev/null 2>err.txt || fail "$4: search: $(cat err.txt)"
}
build_ms=$(duration_ms "$CLIPC" index build --type HNSW16 --vectors y.npy --out timed.idx --threads 2)
cp base.idx timed.idx
add_ms=$(duration_ms "$CLIPC" index add --index timed.idx --vectors more.npy)
cp base.idx timed.idx
remove_ms=$(duration_ms "$CLIPC" index remove --index timed.idx --ids rm.npy)
t0=$(date +%s)
kills=0
for i in 1 2 3 4 5; do
    cp base.idx cur.idx
    run_and_kill $((build_ms / 2)) "$CLIPC" index build --type HNSW16 --vectors y.npy --out cur.idx --threads 2
    kills=$((kills + killed))
    check_index cur.idx base.idx 4000 build
    cp base.idx cur.idx
    run_and_kill $((add_ms / 2)) "$CLIPC" index add --index cur.idx --vectors more.npy
    kills=$((kills + killed))
    check_index cur.idx base.idx 6000 add
    cp base.idx cur.idx
    run_and_kill $((remove_ms / 2)) "$CLIPC" index remove --index cur.idx --ids rm.npy
    kills=$((kills + killed))
    check_index cur.idx base.idx $((5000 - n_removed)) remove
done
[ $kills -gt 0 ] || fail "no index command was killed"
echo "index: $kills kills ($(($(date +%s) - t0)) s)"

# from images with the model trained above: the index and its embedding cache survive kills
images_ms=$(duration_ms "$CLIPC" index build --model straight/model --images syn/images --out img.idx --quiet)
test -f img.idx || fail "index build from images failed"
cp img.idx img_base.idx
kills=0
for i in 1 2 3 4; do
    cp img_base.idx img.idx
    rm -f img.idx.cache # embedded again, and the cache written again
    run_and_kill $((images_ms / 2)) "$CLIPC" index build --model straight/model --images syn/images --out img.idx --type HNSW16
    kills=$((kills + killed))
    check_index img.idx img_base.idx 64 "build from images" q16.npy
    if [ -e img.idx.cache ]; then
        "$CLIPC" index info img.idx.cache >/dev/null 2>err.txt || fail "the embedding cache does not load: $(cat err.txt)"
    fi
done
"$CLIPC" search --index img.idx --text "a red circle" --k 2 >/dev/null || fail "search after the kills"
echo "index from images: $kills kills; kill9 ok"
