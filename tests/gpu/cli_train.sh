#!/bin/sh
# cli_train.sh — section 8 of tests/gpu/run.sh: 10 steps of `clipc train --device cuda` against
# `--device cpu` from the same random ViT-B/32 CLIP and data (tests/gpu/make_model.sh): per-step
# losses (--loss-log) must agree (f32 rel <= 1e-4; bf16 reported).
# Environment from run.sh: CLIPC, PYTHON, TMPDIR.
set -u
dir=${TMPDIR:-/tmp}/gpu_cli
"$CLIPC" train --help 2>&1 | grep -q -- '--loss-log' || { echo "not available yet: clipc train has no --loss-log"; exit 3; }
sh tests/gpu/make_model.sh "$dir" || exit 1
for dev in cpu cuda; do
    rm -f "$dir/$dev.txt"
    "$CLIPC" train --model "$dir/model_f32" --data "$dir/data/pairs.tsv" --steps 10 --batch 16 --seed 0 --device $dev \
        --val-split 0.1 --loss-log "$dir/$dev.txt" --out "$dir/trained_$dev" --quiet > /dev/null || exit 1
done
rm -f "$dir/cuda_bf16.txt"
CLIPC_CUDA_PRECISION=bf16 "$CLIPC" train --model "$dir/model_f32" --data "$dir/data/pairs.tsv" --steps 10 --batch 16 \
    --seed 0 --device cuda --val-split 0.1 --loss-log "$dir/cuda_bf16.txt" --out "$dir/trained_bf16" --quiet > /dev/null || exit 1
$PYTHON - "$dir" <<'PY'
import sys
d = sys.argv[1]
read = lambda n: [float(l.split()[1]) for l in open(f"{d}/{n}.txt")]
cpu, f32, bf16 = read("cpu"), read("cuda"), read("cuda_bf16")
rel = lambda a: max(abs(x - y) / abs(y) for x, y in zip(a, cpu))
ok = len(f32) == len(cpu) == 10 and rel(f32) <= 1e-4
print(f"RESULT check=clipc_train_loss_rel_cuda_f32_vs_cpu value={rel(f32):.3e} limit=1e-4 {'ok' if ok else 'FAIL'}")
print(f"RESULT check=clipc_train_loss_rel_cuda_bf16_vs_cpu value={rel(bf16):.3e} limit=2e-2 info")
sys.exit(0 if ok else 1)
PY
