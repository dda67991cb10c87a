#!/bin/sh
# cli_embed.sh — section 7 of tests/gpu/run.sh: `clipc embed --device cuda` against `--device cpu`
# on a random ViT-B/32 CLIP, f32 (cosine >= 0.99999) and bf16 (cosine >= 0.999), plus embedding
# throughput. Exits 3 ("not available yet") until the command and the reference script exist.
#
# Interface this script assumes (ADAPT here when `clipc embed` and tests/reference/clip_ref.py land):
#   $PYTHON tests/reference/clip_ref.py random-model --arch ViT-B-32 --seed 0 --out DIR/model
#   $PYTHON tests/reference/clip_ref.py random-images --count 256 --seed 0 --out DIR/images
#   $CLIPC embed --model DIR/model --images DIR/images --out FILE.npy --device cpu|cuda
# bf16 is selected with CLIPC_CUDA_PRECISION=bf16 (read by the CUDA backend).
# Environment from run.sh: CLIPC (binary), PYTHON, TMPDIR.
set -u
ref=tests/reference/clip_ref.py
dir=${TMPDIR:-/tmp}/cli_embed
"$CLIPC" embed --help >/dev/null 2>&1 || { echo "not available yet: clipc embed"; exit 3; }
"$CLIPC" embed --help 2>&1 | grep -q -- '--device' || { echo "not available yet: clipc embed has no --device"; exit 3; }
[ -f "$ref" ] || { echo "not available yet: $ref"; exit 3; }
grep -q 'random-model' "$ref" || { echo "not available yet: $ref has no random-model mode"; exit 3; }
mkdir -p "$dir"
$PYTHON "$ref" random-model --arch ViT-B-32 --seed 0 --out "$dir/model" || exit 1
$PYTHON "$ref" random-images --count 256 --seed 0 --out "$dir/images" || exit 1
"$CLIPC" embed --model "$dir/model" --images "$dir/images" --out "$dir/cpu.npy" --device cpu || exit 1
t0=$(date +%s.%N)
"$CLIPC" embed --model "$dir/model" --images "$dir/images" --out "$dir/cuda_f32.npy" --device cuda || exit 1
t1=$(date +%s.%N)
CLIPC_CUDA_PRECISION=bf16 "$CLIPC" embed --model "$dir/model" --images "$dir/images" --out "$dir/cuda_bf16.npy" --device cuda || exit 1
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
