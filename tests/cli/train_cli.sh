#!/bin/sh
# train_cli.sh — `clipc train` end to end on synthetic data:
#   1. a tiny CLIP from scratch: the validation loss falls by at least 40%;
#   2. --resume from a mid-run checkpoint gives exactly the loss sequence of the uninterrupted run
#      (across an epoch boundary);
#   3. Ctrl-C (SIGINT) saves a checkpoint and exits 130; export and eval work on the results;
#   4. bad input: missing data file, unreadable images are skipped and counted;
#   5. NaN/Inf batches are skipped, three in a row stop training; 6. a full disk never loses a checkpoint.
set -eu
seed=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
"$CLIPC" synth --out "$TMPDIR/data" --count 600 --seed "$seed" --quiet > /dev/null
common="--arch tiny --merges 300 --threads 2 --quiet"

# 1. learning
"$CLIPC" train $common --data "$TMPDIR/data/pairs.tsv" --out "$TMPDIR/learn" --steps 200 --batch 32 --lr 1e-3 \
    --eval-every 100 --seed "$seed" > "$TMPDIR/learn.log"
/usr/bin/python3 - "$TMPDIR/learn/train_log.jsonl" <<'PY'
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
first, last = log[0]["val_loss"], log[-1]["val_loss"]
assert log[0]["when"] == "start" and log[-1]["when"] == "end", log
assert last <= 0.6 * first, f"validation loss {first:.3f} -> {last:.3f}: not a 40% fall"
print(f"val loss {first:.3f} -> {last:.3f}, t2i R@1 {log[0]['val']['text_to_image']['R@1']} -> {log[-1]['val']['text_to_image']['R@1']}")
PY
test -f "$TMPDIR/learn/curves.png" && test -f "$TMPDIR/learn/model/model.safetensors" && test -f "$TMPDIR/learn/val.tsv"
"$CLIPC" eval --model "$TMPDIR/learn/model" --data "$TMPDIR/learn/val.tsv" --quiet | grep -q '"text_to_image"'

# 2. resume: 120 pairs in batches of 16 = 7 batches per epoch; checkpoint at step 4, resume to 10
"$CLIPC" synth --out "$TMPDIR/small" --count 120 --seed "$seed" --quiet > /dev/null
run() { "$CLIPC" train $common --data "$TMPDIR/small/pairs.tsv" --steps 10 --batch 16 --save-every 4 --seed 3 "$@"; }
run --out "$TMPDIR/straight" --loss-log "$TMPDIR/straight.txt" > /dev/null
run --out "$TMPDIR/resumed" --loss-log "$TMPDIR/resumed.txt" > /dev/null
ls "$TMPDIR/resumed/checkpoints/step_0000004.safetensors" > /dev/null
rm "$TMPDIR/resumed/checkpoints/step_0000008.safetensors" "$TMPDIR/resumed/checkpoints/step_0000010.safetensors"
echo step_0000004.safetensors > "$TMPDIR/resumed/checkpoints/latest"
head -n 4 "$TMPDIR/resumed.txt" > "$TMPDIR/resumed4.txt" && mv "$TMPDIR/resumed4.txt" "$TMPDIR/resumed.txt"
run --out "$TMPDIR/resumed" --loss-log "$TMPDIR/resumed.txt" --resume > "$TMPDIR/resume.log"
test "$(wc -l < "$TMPDIR/straight.txt")" = 10
cmp "$TMPDIR/straight.txt" "$TMPDIR/resumed.txt" || { echo "resumed losses differ:"; paste "$TMPDIR/straight.txt" "$TMPDIR/resumed.txt"; exit 1; }
cmp "$TMPDIR/straight/model/model.safetensors" "$TMPDIR/resumed/model/model.safetensors"

# 3. SIGINT during training: a checkpoint is saved, exit status 130
"$CLIPC" train $common --data "$TMPDIR/small/pairs.tsv" --out "$TMPDIR/int" --steps 100000 --batch 16 \
    --loss-log "$TMPDIR/int.txt" --seed 3 > "$TMPDIR/int.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$TMPDIR/int.txt" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
status=0
wait $pid || status=$?
test "$status" = 130 || { cat "$TMPDIR/int.log"; echo "exit status $status after SIGINT"; exit 1; }
grep -q "interrupted; checkpoint saved" "$TMPDIR/int.log"
latest=$(cat "$TMPDIR/int/checkpoints/latest")
"$CLIPC" export --checkpoint "$TMPDIR/int/checkpoints/$latest" --out "$TMPDIR/int_model" --dtype f16 --quiet > /dev/null
"$CLIPC" info --model "$TMPDIR/int_model" | grep -q "vision tower"

# 4. bad input
if "$CLIPC" train $common --data "$TMPDIR/nope.tsv" --out "$TMPDIR/bad" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "nope.tsv" "$TMPDIR/err"
cp -r "$TMPDIR/small" "$TMPDIR/broken"
for f in 000003 000011 000020 000031 000042 000057 000068 000079; do echo "not a png" > "$TMPDIR/broken/images/$f.png"; done
"$CLIPC" train $common --data "$TMPDIR/broken/pairs.tsv" --out "$TMPDIR/broken_run" --steps 8 --batch 16 \
    --seed 3 > "$TMPDIR/broken.log" 2> "$TMPDIR/broken.err"
grep -q "skipping unreadable image" "$TMPDIR/broken.err"
grep -Eq "[1-9][0-9]* unreadable images skipped" "$TMPDIR/broken.log"

# 5. NaN/Inf: an absurd learning rate blows the weights up after the first step; the following batches
#    are skipped and reported, three in a row stop training (exit 1), the last good checkpoint stays
if "$CLIPC" train $common --data "$TMPDIR/small/pairs.tsv" --out "$TMPDIR/nan" --steps 20 --batch 16 --lr 1e30 \
    --warmup 0 --save-every 1 --seed 3 > /dev/null 2> "$TMPDIR/nan.err"; then echo "NaN run did not fail"; exit 1; fi
test "$(grep -c "NaN/Inf loss or gradient" "$TMPDIR/nan.err")" = 3 || { cat "$TMPDIR/nan.err"; exit 1; }
grep -q "3 batches in a row had NaN/Inf" "$TMPDIR/nan.err"
test "$(cat "$TMPDIR/nan/checkpoints/latest")" = step_0000001.safetensors
"$CLIPC" export --checkpoint "$TMPDIR/nan/checkpoints/step_0000001.safetensors" --out "$TMPDIR/nan_model" --quiet > /dev/null

# 6. a full disk while saving (a file-size limit: writes fail with EFBIG): clear error naming the file,
#    the previous checkpoints and `latest` untouched, no partial file left
cp "$TMPDIR/straight/checkpoints/step_0000008.safetensors" "$TMPDIR/good8"
if sh -c 'trap "" XFSZ; ulimit -f 20000; exec "$@"' sh "$CLIPC" train $common --data "$TMPDIR/small/pairs.tsv" \
    --out "$TMPDIR/straight" --steps 12 --batch 16 --save-every 4 --seed 3 --resume > /dev/null 2> "$TMPDIR/full.err"; then
    echo "save on a full disk did not fail"; exit 1
fi
grep -q "step_0000012.safetensors: write failed" "$TMPDIR/full.err" || { cat "$TMPDIR/full.err"; exit 1; }
test "$(cat "$TMPDIR/straight/checkpoints/latest")" = step_0000010.safetensors
cmp "$TMPDIR/straight/checkpoints/step_0000008.safetensors" "$TMPDIR/good8"
test "$(ls "$TMPDIR/straight/checkpoints" | grep -cv '^step_00000\(04\|08\|10\).safetensors$\|^latest$')" = 0 ||
    { ls -la "$TMPDIR/straight/checkpoints"; exit 1; }
