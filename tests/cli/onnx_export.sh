#!/bin/sh
# onnx_export.sh — `clipc export --format onnx` run in ONNX Runtime (the npm package onnxruntime-node,
# tests/onnx/): vision.onnx on clipc-preprocessed images and text.onnx on clip.tokenize ids give the
# embeddings `clipc embed` writes (cosine >= 0.99999, unit norm), at batch 1 and a batch of all, with the
# sequence at the full context and trimmed to the longest caption (dynamic axes); both towers again
# with gelu_pytorch_tanh activations; and from a training checkpoint. Bad arguments are errors. Skips, loudly, only when the npm
# registry cannot be reached (no ONNX Runtime to install).
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
# ---- ONNX Runtime for node, installed once into build/ (never into the source tree)
cache="${CLIPC_ONNX_CACHE:-$CLIPC_SRC/build/onnx-node}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "onnx_export: node and npm are required (scripts/install-deps.sh installs them)" >&2
    exit 1
fi
if [ ! -e "$cache/node_modules/onnxruntime-node/package.json" ] || ! cmp -s "$CLIPC_SRC/tests/onnx/package.json" "$cache/package.json"; then
    if ! timeout 30 npm ping >/dev/null 2>&1; then
        echo "################################################################################"
        echo "## SKIPPED onnx_export: the npm registry is unreachable, so ONNX Runtime      ##"
        echo "## (onnxruntime-node) cannot be installed; the exported files were NOT run.  ##"
        echo "################################################################################"
        exit 0
    fi
    mkdir -p "$cache"
    cp "$CLIPC_SRC/tests/onnx/package.json" "$cache/package.json.new"
    # ONNXRUNTIME_NODE_INSTALL=skip: the CPU runtime is in the npm package; skip the optional CUDA download
    (cd "$cache" && mv package.json.new package.json && rm -f package-lock.json &&
        ONNXRUNTIME_NODE_INSTALL=skip timeout 300 npm install --no-audit --no-fund --loglevel=error) || {
        rm -f "$cache/package.json"
        echo "onnx_export: npm install of onnxruntime-node failed" >&2
        exit 1
    }
    # keep only this platform's runtime (the package carries five: ~300 MB -> ~50 MB)
    here="$(node -p process.platform)/$(node -p process.arch)"
    for dir in "$cache"/node_modules/onnxruntime-node/bin/napi-v*/*/*; do
        case "$dir" in */"$here") ;; *) rm -rf "$dir" ;; esac
    done
fi
run_onnx() { NODE_PATH="$cache/node_modules" node "$CLIPC_SRC/tests/onnx/run_onnx.js" "$@" > /dev/null; }

# ---- a random-weight model (gelu text tower, quick_gelu vision tower), images and captions
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
/usr/bin/python3 "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 > /dev/null
model="$TMPDIR/model_f32"
ln -s "$vocab" "$model/bpe_simple_vocab_16e6.txt.gz"
/usr/bin/python3 - "$TMPDIR" "$seed" <<'PY'
import sys, numpy as np
from PIL import Image
out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
with open(f"{out}/images.txt", "w") as f:
    for i, (w, h, ext) in enumerate([(64, 48, "png"), (37, 91, "jpg"), (50, 50, "png")]):
        base = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        path = f"{out}/img{i}.{ext}"
        Image.fromarray(base).resize((w, h), Image.BILINEAR).save(path)
        f.write(path + "\n")
with open(f"{out}/captions.txt", "w", encoding="utf-8") as f:
    f.write("a photo of a dog\nTwo RED circles above a blue square!\nhi\n")
    f.write(" ".join(["a very long caption"] * 40) + "\n")
PY
inputs() { # $1 model dir, $2 tag: $2_pixels*.npy (clipc preprocess) and $2_ids*.npy (clipc tokenize)
    size=$(/usr/bin/python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['vision_config']['image_size'])" "$1/config.json")
    context=$(/usr/bin/python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['text_config'].get('max_position_embeddings', 77))" "$1/config.json")
    i=0
    while read -r image; do
        "$CLIPC" preprocess --image "$image" --size "$size" --out "$TMPDIR/$2_px$i.npy"
        i=$((i + 1))
    done < "$TMPDIR/images.txt"
    "$CLIPC" tokenize --model "$1" --special --context "$context" < "$TMPDIR/captions.txt" > "$TMPDIR/$2_ids.txt"
    /usr/bin/python3 - "$TMPDIR" "$2" "$context" <<'PY'
import sys, numpy as np
d, tag, context = sys.argv[1], sys.argv[2], int(sys.argv[3])
pixels = np.stack([np.load(f"{d}/{tag}_px{i}.npy") for i in range(3)]).astype(np.float32)
np.save(f"{d}/{tag}_pixels.npy", pixels)
np.save(f"{d}/{tag}_pixels1.npy", pixels[1:2])
rows = [[int(t) for t in line.split()] for line in open(f"{d}/{tag}_ids.txt")]
ids = np.zeros((len(rows), context), dtype=np.int64)
for i, r in enumerate(rows):
    ids[i, :len(r)] = r
longest = max(len(r) for r in rows[:3])
np.save(f"{d}/{tag}_ids.npy", ids)                      # all captions, the full context
np.save(f"{d}/{tag}_ids_short.npy", ids[:3, :longest])  # trimmed to the longest of the first three
np.save(f"{d}/{tag}_ids1.npy", ids[2:3, :len(rows[2])])  # one caption, its own length
PY
}

check_model() { # $1 model dir, $2 tag, $3 the ONNX directory (exported here when absent): run both
    # towers, compare with clipc embed
    inputs "$1" "$2"
    "$CLIPC" embed --model "$1" --images "$TMPDIR/images.txt" --out "$TMPDIR/$2_img.npy" --quiet
    "$CLIPC" embed --model "$1" --texts "$TMPDIR/captions.txt" --out "$TMPDIR/$2_txt.npy" --quiet 2> /dev/null
    o="$3"
    [ -e "$o/text.onnx" ] || "$CLIPC" export --model "$1" --format onnx --out "$o" > /dev/null
    run_onnx "$o/vision.onnx" "$TMPDIR/$2_v_" "pixel_values=$TMPDIR/$2_pixels.npy"
    run_onnx "$o/vision.onnx" "$TMPDIR/$2_v1_" "pixel_values=$TMPDIR/$2_pixels1.npy"
    run_onnx "$o/text.onnx" "$TMPDIR/$2_t_" "input_ids=$TMPDIR/$2_ids.npy"
    run_onnx "$o/text.onnx" "$TMPDIR/$2_ts_" "input_ids=$TMPDIR/$2_ids_short.npy"
    run_onnx "$o/text.onnx" "$TMPDIR/$2_t1_" "input_ids=$TMPDIR/$2_ids1.npy"
    /usr/bin/python3 - "$TMPDIR" "$2" <<'PY'
import sys, numpy as np
d, tag = sys.argv[1], sys.argv[2]
def check(name, ours, theirs):
    assert ours.shape == theirs.shape, (name, ours.shape, theirs.shape)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() >= 0.99999, (name, cos)
    assert abs(np.linalg.norm(theirs, axis=1) - 1).max() < 1e-5, name
    return cos.min()
img, txt = np.load(f"{d}/{tag}_img.npy"), np.load(f"{d}/{tag}_txt.npy")
worst = min(
    check("vision batch", img, np.load(f"{d}/{tag}_v_image_embeds.npy")),
    check("vision batch 1", img[1:2], np.load(f"{d}/{tag}_v1_image_embeds.npy")),
    check("text full context", txt, np.load(f"{d}/{tag}_t_text_embeds.npy")),
    check("text trimmed", txt[:3], np.load(f"{d}/{tag}_ts_text_embeds.npy")),
    check("text one", txt[2:3], np.load(f"{d}/{tag}_t1_text_embeds.npy")),
)
# the features output is the projection before normalisation
feat = np.load(f"{d}/{tag}_v_image_features.npy")
assert np.abs(feat / np.linalg.norm(feat, axis=1, keepdims=True) - np.load(f"{d}/{tag}_v_image_embeds.npy")).max() < 1e-6
print(f"onnx {tag}: worst cosine {worst:.7f}")
PY
}
check_model "$model" base "$TMPDIR/base_onnx"
# both towers with the tanh approximation of gelu (same weights, another config)
mkdir "$TMPDIR/model_tanh"
for f in "$model"/*; do [ "$(basename "$f")" = config.json ] || ln -s "$f" "$TMPDIR/model_tanh/"; done
sed 's/"hidden_act": "[a-z_]*"/"hidden_act": "gelu_pytorch_tanh"/g' "$model/config.json" > "$TMPDIR/model_tanh/config.json"
grep -c gelu_pytorch_tanh "$TMPDIR/model_tanh/config.json" | grep -q 2
check_model "$TMPDIR/model_tanh" tanh "$TMPDIR/tanh_onnx"
test -e "$TMPDIR/base_onnx/bpe_simple_vocab_16e6.txt.gz" # the tokenizer travels with the graphs
# from a training checkpoint (tiny architecture, a learned 300-merge tokenizer, no eos_token_id in the
# config: the end-of-text id comes from the tokenizer), against the model directory export writes
"$CLIPC" synth --out "$TMPDIR/data" --count 48 --seed "$seed" --quiet > /dev/null
"$CLIPC" train --arch tiny --merges 300 --threads 2 --quiet --data "$TMPDIR/data/pairs.tsv" --out "$TMPDIR/run" \
    --steps 2 --batch 16 --save-every 2 --seed 3 > /dev/null
ckpt="$TMPDIR/run/checkpoints/$(cat "$TMPDIR/run/checkpoints/latest")"
"$CLIPC" export --checkpoint "$ckpt" --format onnx --out "$TMPDIR/ckpt_onnx" > /dev/null
"$CLIPC" export --checkpoint "$ckpt" --out "$TMPDIR/ckpt_model" > /dev/null
check_model "$TMPDIR/ckpt_model" ckpt "$TMPDIR/ckpt_onnx"

# ---- errors: exit status != 0 and a message naming what is wrong
if "$CLIPC" export --model "$model" --format tflite --out "$TMPDIR/x" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "hf or onnx" "$TMPDIR/err"
if "$CLIPC" export --model "$TMPDIR/nowhere" --format onnx --out "$TMPDIR/x" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "nowhere/config.json" "$TMPDIR/err"
if "$CLIPC" export --model "$model" --checkpoint "$TMPDIR/c" --format onnx --out "$TMPDIR/x" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "one of --checkpoint or --model" "$TMPDIR/err"
if "$CLIPC" export --model "$model" --format onnx --dtype f16 --out "$TMPDIR/x" 2> "$TMPDIR/err"; then exit 1; fi
test ! -e "$TMPDIR/x/vision.onnx"
echo "onnx export ok"
