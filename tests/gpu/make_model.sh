#!/bin/sh
# make_model.sh DIR — a random ViT-B/32 CLIP in Hugging Face layout (tests/reference/clip_ref.py) with a
# vocabulary learned from synthetic captions (../shared is not on the GPU machine), and 224x224
# synthetic image-caption pairs: DIR/model_f32/, DIR/data/pairs.tsv, DIR/images.txt.
set -eu
dir=$1
[ -f "$dir/model_f32/vocab.json" ] && exit 0
mkdir -p "$dir"
$PYTHON tests/reference/clip_ref.py make "$dir" 0 --arch b32 --dtypes f32 --n-images 2 --n-texts 2 > /dev/null
"$CLIPC" synth --out "$dir/data" --count 256 --size 224 --seed 0 --quiet > /dev/null
"$CLIPC" tokenizer-learn --data "$dir/data/pairs.tsv" --merges 300 --out "$dir/model_f32" --quiet > /dev/null
awk -F'\t' -v d="$dir/data" 'NR > 1 { print d "/" $1 }' "$dir/data/pairs.tsv" > "$dir/images.txt"
