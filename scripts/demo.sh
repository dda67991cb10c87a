#!/bin/sh
# demo.sh — `make demo`: the whole of clipc on a built-in synthetic dataset, in a few minutes on 2 cores.
#   1. synthetic image–caption pairs (coloured shapes, captions saying what is where)
#   2. a tiny CLIP trained from scratch (validation recall printed before and after)
#   3. the exported model (Hugging Face layout)
#   4. an HNSW index of the validation images
#   5. text queries and an image query against it
# Everything goes to demo-out/ (DEMO_OUT). DEMO_PAIRS, DEMO_STEPS, DEMO_BATCH change the size.
set -eu
cd "$(dirname "$0")/.."
CLIPC=${CLIPC:-build/clipc}
OUT=${DEMO_OUT:-demo-out}
PAIRS=${DEMO_PAIRS:-4000}
STEPS=${DEMO_STEPS:-1000}
BATCH=${DEMO_BATCH:-64}
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
elapsed() { echo "$(($(date +%s) - start)) s"; }

say "[1/5] Synthetic data: $PAIRS image-caption pairs (64x64 shapes) -> $OUT/data"
"$CLIPC" synth --out "$OUT/data" --count "$PAIRS" --seed 7
sed -n '2,4p' "$OUT/data/pairs.tsv" | sed 's/^/    /'

say "[2/5] Training a tiny CLIP from scratch: $STEPS steps at batch $BATCH (validation = 5% of the images)"
"$CLIPC" train --arch tiny --data "$OUT/data/pairs.tsv" --out "$OUT/run" --steps "$STEPS" --batch "$BATCH" \
    --lr 1e-3 --eval-every "$((STEPS / 4))" --seed 7
echo "    log: $OUT/run/train_log.jsonl   curves: $OUT/run/curves.png   ($(elapsed) so far)"

say "[3/5] The exported model (Hugging Face layout): $OUT/run/model"
"$CLIPC" info --model "$OUT/run/model" | sed 's/^/    /'

say "[4/5] HNSW index of the validation images"
awk -F'\t' 'NR > 1 { print $1 }' "$OUT/run/val.tsv" | sort -u > "$OUT/val_images.txt"
"$CLIPC" index build --model "$OUT/run/model" --images "$OUT/val_images.txt" --type HNSW32 --out "$OUT/val.index"

# search results with the caption each image really has
show() {
    awk -F'\t' -v captions="$OUT/run/val.tsv" '
        function base(path) { sub(/.*\//, "", path); return path }
        BEGIN { while ((getline line < captions) > 0) { split(line, f, "\t"); k = base(f[1]); if (!(k in cap)) cap[k] = f[2] } }
        { printf "    %s. %.3f  %s\n         \"%s\"\n", $1, $2, base($3), cap[base($3)] }'
}

say "[5/5] Searching"
for query in "a large red circle" "a small blue square above a large yellow triangle" \
             "a green star on a black background" "a small pink hexagon in the top right corner"; do
    echo "  text: \"$query\""
    "$CLIPC" search --index "$OUT/val.index" --text "$query" --k 3 | show
done
query_image=$(sed -n '5p' "$OUT/val_images.txt")
query_caption=$(awk -F'\t' -v p="$query_image" '$1 == p { print $2; exit }' "$OUT/run/val.tsv")
echo "  image: $query_image (\"$query_caption\")"
"$CLIPC" search --index "$OUT/val.index" --image "$query_image" --k 3 | show

say "Done in $(elapsed)."
echo "Browse the index in a web page:"
echo "    $CLIPC serve --index $OUT/val.index --port 8080      then open http://127.0.0.1:8080/"
echo "Evaluate or export the model:"
echo "    $CLIPC eval --model $OUT/run/model --data $OUT/run/val.tsv"
echo "    $CLIPC export --checkpoint $OUT/run/checkpoints/step_$(printf '%07d' "$STEPS").safetensors --out $OUT/model-bf16 --dtype bf16"
