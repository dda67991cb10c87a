#!/bin/sh
# cli_train.sh — section 8 of tests/gpu/run.sh: 10 steps of `clipc train --device cuda` against
# `--device cpu` from the same random ViT-B/32 CLIP and data: the losses must agree (f32 rel <=
# 1e-4; bf16 reported). Exits 3 ("not available yet") until the command and reference exist.
#
# Interface this script assumes (ADAPT here when `clipc train` and tests/reference/clip_ref.py land):
#   $PYTHON tests/reference/clip_ref.py random-model --arch ViT-B-32 --seed 0 --out DIR/model
#   $PYTHON tests/reference/clip_ref.py random-pairs --count 160 --seed 0 --out DIR/data
#   $CLIPC train --model DIR/model --data DIR/data --steps 10 --batch 16 --seed 0 --device cpu|cuda \
#                --loss-log FILE          (one loss per line)
# Environment from run.sh: CLIPC, PYTHON, TMPDIR.
set -u
ref=tests/reference/clip_ref.py
dir=${TMPDIR:-/tmp}/cli_train
"$CLIPC" train --help >/dev/null 2>&1 || { echo "not available yet: clipc train"; exit 3; }
"$CLIPC" train --help 2>&1 | grep -q -- '--device' || { echo "not available yet: clipc train has no --device"; exit 3; }
"$CLIPC" train --help 2>&1 | grep -q -- '--loss-log' || { echo "not available yet: clipc train has no --loss-log"; exit 3; }
[ -f "$ref" ] && grep -q 'random-pairs' "$ref" || { echo "not available yet: $ref random-pairs"; exit 3; }
mkdir -p "$dir"
$PYTHON "$ref" random-model --arch ViT-B-32 --seed 0 --out "$dir/model" || exit 1
$PYTHON "$ref" random-pairs --count 160 --seed 0 --out "$dir/data" || exit 1
for dev in cpu cuda; do
    "$CLIPC" train --model "$dir/model" --data "$dir/data" --steps 10 --batch 16 --seed 0 --device $dev \
        --loss-log "$dir/$dev.txt" --out "$dir/trained_$dev" || exit 1
done
CLIPC_CUDA_PRECISION=bf16 "$CLIPC" train --model "$dir/model" --data "$dir/data" --steps 10 --batch 16 --seed 0 \
    --device cuda --loss-log "$dir/cuda_bf16.txt" --out "$dir/trained_bf16" || exit 1
$PYTHON - "$dir" <<'PY'
import sys
d = sys.argv[1]
read = lambda n: [float(x) for x in open(f"{d}/{n}.txt").read().split()]
cpu, f32, bf16 = read("cpu"), read("cuda"), read("cuda_bf16")
rel = lambda a: max(abs(x - y) / abs(y) for x, y in zip(a, cpu))
ok = len(f32) == len(cpu) == 10 and rel(f32) <= 1e-4
print(f"RESULT check=clipc_train_loss_rel_cuda_f32_vs_cpu value={rel(f32):.3e} limit=1e-4 {'ok' if ok else 'FAIL'}")
print(f"RESULT check=clipc_train_loss_rel_cuda_bf16_vs_cpu value={rel(bf16):.3e} limit=2e-2 info")
sys.exit(0 if ok else 1)
PY
