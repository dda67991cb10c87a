#!/bin/sh
# cli_embed.sh — section 7 of tests/gpu/run.sh: `clipc embed --device cuda` against `--device cpu`
# on a random ViT-B/32 CLIP (tests/gpu/make_model.sh), f32 (cosine >= 0.99999) and bf16 (cosine >=
# 0.999), plus embedding throughput. bf16 is selected with CLIPC_CUDA_PRECISION=bf16.
# Environment from run.sh: CLIPC (binary), PYTHON, TMPDIR.
set -u
dir=${TMPDIR:-/tmp}/gpu_cli
"$CLIPC" embed --help 2>&1 | grep -q -- '--device' || { echo "not available yet: clipc embed has no --device"; exit 3; }
sh tests/gpu/make_model.sh "$dir" || exit 1
model="$dir/model_f32"
"$CLIPC" embed --model "$model" --images "$dir/images.txt" --out "$dir/cpu.npy" --device cpu --quiet || exit 1
t0=$(date +%s.%N)
"$CLIPC" embed --model "$model" --images "$dir/images.txt" --out "$dir/cuda_f32.npy" --device cuda --quiet || exit 1
t1=$(date +%s.%N)
CLIPC_CUDA_PRECISION=bf16 "$CLIPC" embed --model "$model" --images "$dir/images.txt" --out "$dir/cuda_bf16.npy" --device cuda --quiet || exit 1
t2=$(date +%s.%N)
$PYTHON - "$dir" "$t0" "$t1" "$t2" <<'PY'
import sys, numpy as np
d, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
ref = np.load(f"{d}/cpu.npy").astype(np.float64)
bad = 0
for name, limit in (("cuda_f32", 0.99999), ("cuda_bf16", 0.999)):
    e = np.load(f"{d}/{name}.npy").astype(np.float64)
    cos = float(((e * ref).sum(1) / np.sqrt((e * e).sum(1) * (ref * ref).sum(1))).min())
    ok = cos >= limit
    bad += not ok
    print(f"RESULT check=clipc_embed_cosine_{name}_vs_cpu value={cos:.8f} limit={limit} {'ok' if ok else 'FAIL'}")
n = ref.shape[0]
print(f"RESULT bench=clipc_embed_cli f32_img_per_s={n / (t1 - t0):.1f} bf16_img_per_s={n / (t2 - t1):.1f} (wall, incl. load)")
sys.exit(1 if bad else 0)
PY
