#!/bin/sh
# benchmarks/train/run.sh — (a) one training step of ViT-B/32 + text at batch 16, clipc vs PyTorch
# (same threads, same run, random weights from the reference); (b) a tiny CLIP trained from scratch
# on the synthetic shapes data for 400 steps at batch 64: recall before and after; (c) bf16_curves.sh.
# Writes benchmarks/out/train.md. Env: THREADS (default 2), WORK (default build/bench-work),
# TINY_STEPS (default 400).
set -eu
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2}
WORK=${WORK:-build/bench-work}
TINY_STEPS=${TINY_STEPS:-400}
OUT=benchmarks/out/train.md
mkdir -p "$WORK" benchmarks/out
[ -x build/bench/train/bench_train ] || make -s bench-bins
MODEL="$WORK/b32/model_f32"
if [ ! -f "$MODEL/model.safetensors" ]; then
    mkdir -p "$WORK/b32"
    /usr/bin/python3 tests/reference/clip_ref.py make "$WORK/b32" 1 --arch b32 --dtypes f32 --n-images 8 --n-texts 8
fi
echo "train: clipc step (ViT-B/32, batch 16, 20-token captions)"
clipc_json=$(CLIPC_THREADS=$THREADS build/bench/train/bench_train "$MODEL" 16 20 3)
echo "$clipc_json"
clipc77_json=$(CLIPC_THREADS=$THREADS build/bench/train/bench_train "$MODEL" 16 77 3)
echo "$clipc77_json"
clipc_rc_json=$(CLIPC_THREADS=$THREADS build/bench/train/bench_train "$MODEL" 16 77 3 recompute)
echo "$clipc_rc_json"
clipc_bf16_json=$(CLIPC_THREADS=$THREADS build/bench/train/bench_train "$MODEL" 16 77 3 bf16)
echo "$clipc_bf16_json"
echo "train: PyTorch step"
torch_json=$(/usr/bin/python3 benchmarks/train/torch_step.py "$MODEL" 16 20 2 "$THREADS")
echo "$torch_json"
echo "train: tiny CLIP from scratch, $TINY_STEPS steps"
rm -rf "$WORK/tiny_run" "$WORK/tiny_losses.txt"
[ -f "$WORK/synth/pairs.tsv" ] || build/clipc synth --out "$WORK/synth" --count 3000 --seed 7 --quiet
start=$(date +%s)
build/clipc train --arch tiny --data "$WORK/synth/pairs.tsv" --out "$WORK/tiny_run" --steps "$TINY_STEPS" --batch 64 \
    --eval-every 100 --threads "$THREADS" --quiet --loss-log "$WORK/tiny_losses.txt" > "$WORK/tiny_train.log" 2>&1
seconds=$(($(date +%s) - start))
cp "$WORK/tiny_run/curves.png" benchmarks/out/train_tiny_curves.png
/usr/bin/python3 - "$clipc_json" "$clipc77_json" "$clipc_rc_json" "$torch_json" "$WORK/tiny_run/train_log.jsonl" "$seconds" "$THREADS" "$OUT" "$clipc_bf16_json" "$WORK" <<'PY'
import json, os, sys, subprocess, datetime
clipc, clipc77, clipc_rc, torch = (json.loads(a) for a in sys.argv[1:5])
log, seconds, threads, out = sys.argv[5], int(sys.argv[6]), sys.argv[7], sys.argv[8]
clipc_bf16, work = json.loads(sys.argv[9]), sys.argv[10]
records = [json.loads(l) for l in open(log)]
first, last = records[0], records[-1]
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
def r(rec, d):
    v = rec["val"][d]
    return f"{v['R@1']:.3f} / {v['R@5']:.3f} / {v['R@10']:.3f}"
lines = ["## Training", "",
    f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {cpu}, {threads} threads; `benchmarks/train/run.sh`.", "",
    "### ViT-B/32 + text tower, one step at batch 16 (random weights)", "",
    "| | s/step | peak RSS MB | planned activations MB |", "|---|---|---|---|",
    f"| clipc (captions of 20 tokens; text tower run to the longest caption) | {clipc['s_per_step']:.2f} | {clipc['peak_rss_mb']:.0f} | {clipc['activations_mb']:.0f} |",
    f"| clipc (captions of 77 tokens, as PyTorch here) | {clipc77['s_per_step']:.2f} | {clipc77['peak_rss_mb']:.0f} | {clipc77['activations_mb']:.0f} |",
    f"| clipc, 77 tokens, `--checkpoint-activations` (each block recomputed in backward) | {clipc_rc['s_per_step']:.2f} | {clipc_rc['peak_rss_mb']:.0f} | {clipc_rc['activations_mb']:.0f} |",
    f"| clipc, 77 tokens, `--precision bf16` (bf16 products, f32 weights/AdamW/loss) | {clipc_bf16['s_per_step']:.2f} | {clipc_bf16['peak_rss_mb']:.0f} | {clipc_bf16['activations_mb']:.0f} |",
    f"| PyTorch (captions padded to 77, as HF's processor does) | {torch['s_per_step']:.2f} | {torch['peak_rss_mb']:.0f} | - |",
    "", f"PyTorch / clipc step time at equal caption length: {torch['s_per_step'] / clipc77['s_per_step']:.1f}x.", "",
    f"### Tiny CLIP from scratch on synthetic shapes ({last['step']} steps, batch 64, {seconds} s including evaluations)", "",
    "| | val loss | text→image R@1 / R@5 / R@10 | image→text R@1 / R@5 / R@10 |", "|---|---|---|---|",
    f"| before | {first['val_loss']:.3f} | {r(first, 'text_to_image')} | {r(first, 'image_to_text')} |",
    f"| after | {last['val_loss']:.3f} | {r(last, 'text_to_image')} | {r(last, 'image_to_text')} |",
    "", f"Validation: {last['val']['n_images']} images, {last['val']['n_texts']} captions (chance R@1 = {1 / last['val']['n_images']:.3f}). "
    "Curves: `benchmarks/out/train_tiny_curves.png`.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
# (c) bf16 against f32 over several seeds: benchmarks/out/train_bf16.md
sh benchmarks/train/bf16_curves.sh
