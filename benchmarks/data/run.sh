#!/bin/sh
# run.sh — the data benchmarks, written to benchmarks/out/data.md:
#   1. tokenizer tokens/s, clipc vs a plain-Python openai SimpleTokenizer (simple_tokenizer_ref.py), one
#      thread each, word cache warm in both (and cold in both), on two corpora;
#   2. JPEG decode + CLIP preprocessing to 224, clipc (exact, and --fast-decode) vs PIL + numpy running
#      openai's transform (preprocess_ref.py), one thread each, best of 20, same run;
#   3. what --fast-decode changes (fast_decode_quality).
# Needs build/bench/data/* (make bench-bins) and ../shared (the CLIP vocabulary and golden texts).
cd "$(dirname "$0")/../.." || exit 2
out=benchmarks/out/data.md
mkdir -p benchmarks/out
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
bin=build/bench/data
shared="${CLIPC_SHARED:-../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
for f in "$bin/bench_tokenizer" "$bin/bench_preprocess" "$bin/fast_decode_quality" build/clipc "$vocab"; do
    [ -e "$f" ] || { echo "data benchmark: missing $f (run make bench-bins; ../shared is needed)" >&2; exit 1; }
done
cores=$(nproc) # before OMP_NUM_THREADS, which nproc honours
export OMP_NUM_THREADS=1

# corpora: the golden tokenizer texts (CLIP prompts, emoji names, many scripts) and synthetic captions
sed 1d "$shared/golden/tokenizer_cases.tsv" | cut -f 1 > "$tmp/golden.txt"
build/clipc synth --out "$tmp/synth" --count 5000 --size 8 --quiet
cut -f 2 "$tmp/synth/pairs.tsv" | sed 1d > "$tmp/captions.txt"
rate() { sed -n 's/.*: \([0-9]*\) tokens\/s/\1/p'; }
# The machine may be shared: every figure is the best of ROUNDS runs, the runs of clipc and of its peer
# alternating, so that a busy moment does not favour either side.
ROUNDS=${ROUNDS:-3}
max() { tr ' ' '\n' | awk 'NR == 1 || $1 > m {m = $1} END {print m}'; }
min() { tr ' ' '\n' | awk 'NR == 1 || $1 < m {m = $1} END {print m}'; }

{
    echo "## Data pipeline (tokenizer, image decode + preprocessing)"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores;"
    echo "command: \`benchmarks/data/run.sh\` (one thread for every measurement; clipc and its peer in the same run,"
    echo "each figure the best of $ROUNDS alternating runs)."
    echo
    echo "### Tokenizer: tokens/s, clipc vs openai's SimpleTokenizer algorithm in Python"
    echo
    echo "Warm: one untimed pass fills the word cache of both, then timed passes. Cold: one pass on a fresh tokenizer."
    echo
    echo "| corpus | lines | mode | clipc tokens/s | Python tokens/s | ratio |"
    echo "|---|---|---|---|---|---|"
    for corpus in golden captions; do
        file="$tmp/$corpus.txt"
        lines=$(wc -l < "$file")
        for mode in warm cold; do
            flag=""
            [ $mode = cold ] && flag="--cold"
            cs="" ps=""
            for r in $(seq "$ROUNDS"); do
                cs="$cs $("$bin/bench_tokenizer" "$vocab" "$file" 20 $flag | rate)"
                ps="$ps $($py benchmarks/data/simple_tokenizer_ref.py bench "$vocab" "$file" 3 $flag | rate)"
            done
            c=$(echo $cs | max)
            p=$(echo $ps | max)
            echo "| $corpus | $lines | $mode | $c | $p | $(awk "BEGIN{printf \"%.1fx\", $c / $p}") |"
        done
    done
    echo
    echo "### JPEG decode + CLIP preprocessing to 224x224 (ms per image, best of 20)"
    echo
    echo "Peer: PIL 9.4 + numpy doing openai's \`_transform\` (Image.open, resize BICUBIC, center crop, convert RGB,"
    echo "/255, normalize, CHW). clipc exact is bit-identical to it; --fast-decode uses libjpeg-turbo DCT scaling."
    echo "Test images: photo-like JPEGs from benchmarks/data/make_photos.py (quality 90)."
    echo
    $py benchmarks/data/make_photos.py "$tmp/photos" 1 640x480 1920x1080 4032x3024 > "$tmp/photos.list"
    echo "clipc exact decodes only the rows and columns the crop needs; in brackets: a full decode alone, and"
    echo "resize + crop + normalise of the decoded image alone."
    echo
    echo "| image | file KB | PIL+numpy ms | clipc exact ms (full decode; preprocess) | speed-up | clipc --fast-decode ms | speed-up |"
    echo "|---|---|---|---|---|---|---|"
    for f in $(cat "$tmp/photos.list"); do
        kb=$(( $(wc -c < "$f") / 1024 ))
        ps="" ets="" eds="" eps="" xs=""
        for r in $(seq "$ROUNDS"); do
            ps="$ps $($py benchmarks/data/preprocess_ref.py --repeats 20 "$f" | awk '{print $5}')"
            e=$("$bin/bench_preprocess" --repeats 20 "$f")
            ets="$ets $(echo "$e" | awk '{print $5}')"
            eds="$eds $(echo "$e" | awk '{print $3}')"
            eps="$eps $(echo "$e" | awk '{print $4}')"
            xs="$xs $("$bin/bench_preprocess" --repeats 20 --fast "$f" | awk '{print $5}')"
        done
        p=$(echo $ps | min) et=$(echo $ets | min) x=$(echo $xs | min)
        echo "| $(echo "$e" | awk '{print $2}') | $kb | $p | $et ($(echo $eds | min); $(echo $eps | min)) | $(awk "BEGIN{printf \"%.1fx\", $p / $et}") | $x | $(awk "BEGIN{printf \"%.1fx\", $p / $x}") |"
    done
    echo
    echo "### What --fast-decode changes (224x224 crop vs the exact pipeline)"
    echo
    echo "DCT scaling by 1/2, 1/4 or 1/8 while the shorter side stays >= 224, then the same PIL-exact resize."
    echo
    echo "| image | scale | exact ms (full decode) | fast ms | identical bytes | mean abs diff (levels) | max abs diff | PSNR dB | max tensor diff |"
    echo "|---|---|---|---|---|---|---|---|---|"
    $py benchmarks/data/make_photos.py "$tmp/more" 2 640x480 1280x720 1920x1080 3000x2000 4032x3024 > "$tmp/more.list"
    "$bin/fast_decode_quality" --repeats 10 $(cat "$tmp/more.list") |
        awk '{printf "| %s | %s | %s | %s | %s%% | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6, $7, $8, $9, $10}'
} > "$out.tmp" && mv "$out.tmp" "$out"
echo "wrote $out"
