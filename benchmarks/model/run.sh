#!/bin/sh
# benchmarks/model/run.sh — ViT-B/32 towers: clipc vs PyTorch vs ONNX Runtime, same threads, same run.
# A random-weight ViT-B/32 in Hugging Face layout is written by the reference (tests/reference/clip_ref.py),
# checked for parity (cosine >= 0.99999), exported to ONNX, then timed by all three.
# Writes benchmarks/out/model.md. Env: THREADS (default 2), WORK (default build/bench-work).
set -eu
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2}
WORK=${WORK:-build/bench-work}
OUT=benchmarks/out/model.md
mkdir -p "$WORK" benchmarks/out
BENCH=build/bench/model/bench_model
[ -x "$BENCH" ] || make -s bench-bins
MODEL="$WORK/b32/model_f32"
if [ ! -f "$MODEL/model.safetensors" ]; then
    mkdir -p "$WORK/b32"
    echo "model: writing a random ViT-B/32 with the reference"
    /usr/bin/python3 tests/reference/clip_ref.py make "$WORK/b32" 1 --arch b32 --dtypes f32 --n-images 8 --n-texts 8
fi
if [ ! -f "$WORK/onnx/text.onnx" ]; then
    mkdir -p "$WORK/onnx"
    echo "model: exporting ONNX"
    /usr/bin/python3 benchmarks/model/peers.py export "$MODEL" "$WORK/onnx" >/dev/null 2>&1
fi
if [ ! -d benchmarks/model/node_modules/onnxruntime-node ]; then
    (cd benchmarks/model && npm install --no-save --ignore-scripts onnxruntime-node >/dev/null 2>&1) || true
fi
results="$WORK/model_results.jsonl"
: > "$results"
echo "model: parity"
CLIPC_THREADS=$THREADS $BENCH "$MODEL" check "$WORK/b32/pixels.npy" "$WORK/b32/ids.npy" "$WORK/b32/eot.npy" "$WORK/b32/f32" | tee -a "$results"
echo "model: clipc"
# PRECISIONS: which of f32, bf16, int8 to time (those the CPU lacks run in f32 and are dropped)
for precision in ${PRECISIONS:-f32 bf16 int8}; do
    echo "model: parity at $precision"
    CLIPC_PRECISION=$precision CLIPC_THREADS=$THREADS $BENCH "$MODEL" check "$WORK/b32/pixels.npy" "$WORK/b32/ids.npy" \
        "$WORK/b32/eot.npy" "$WORK/b32/f32" | sed "s/^{/{\"precision\": \"$precision\", /" | tee -a "$results" || continue
    for batch in 1 8 32; do
        CLIPC_PRECISION=$precision CLIPC_THREADS=$THREADS $BENCH "$MODEL" image $batch | sed 's/^{/{"peer": "clipc", /' | tee -a "$results"
    done
    for batch in 1 32; do
        for tokens in 12 77; do
            CLIPC_PRECISION=$precision CLIPC_THREADS=$THREADS $BENCH "$MODEL" text $batch $tokens | sed 's/^{/{"peer": "clipc", /' | tee -a "$results"
        done
    done
done
echo "model: pytorch"
/usr/bin/python3 benchmarks/model/peers.py torch "$MODEL" "$THREADS" | tee -a "$results"
echo "model: onnxruntime"
if [ -d benchmarks/model/node_modules/onnxruntime-node ]; then
    node benchmarks/model/bench_ort.js "$WORK/onnx" "$THREADS" | tee -a "$results" || echo "onnxruntime run failed"
else
    echo "onnxruntime-node not installed: skipped"
fi
/usr/bin/python3 - "$results" "$OUT" "$THREADS" <<'PY'
import json, subprocess, sys, datetime
results, out, threads = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(results) if l.strip().startswith("{")]
check = next((r for r in rows if r.get("check") and r.get("precision", "f32") == "f32"), {})
checks = {r["precision"]: r for r in rows if r.get("check") and "precision" in r}
runs = [r for r in rows if r.get("peer")]
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
def find(peer, tower, batch, tokens=None):
    for r in runs:
        if r["peer"] == peer and r["tower"] == tower and r["batch"] == batch and (tokens is None or r["tokens"] == tokens):
            return r
lines = [f"## Model: ViT-B/32 towers (clipc vs PyTorch vs ONNX Runtime)", "",
         f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {cpu}, {threads} threads; `benchmarks/model/run.sh`; "
         f"random ViT-B/32 weights (f32). Parity of clipc with the reference on this model: min cosine image "
         f"{check.get('min_cosine_image', float('nan')):.8f}, text {check.get('min_cosine_text', float('nan')):.8f}.", "",
         "Lower precisions (`--precision`): min cosine to the f32 reference " +
         ", ".join(f"{p} image {c['min_cosine_image']:.5f} text {c['min_cosine_text']:.5f}" for p, c in checks.items() if p != "f32") + ".", "",
         "| tower | precision | batch | tokens | clipc ms | clipc items/s | clipc GFLOP/s | clipc peak RSS MB | PyTorch items/s | ORT items/s | clipc / ORT f32 |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in [r for r in runs if r["peer"] == "clipc"]:
    t = find("pytorch", r["tower"], r["batch"], None if r["tower"] == "image" else 77)
    o = find("onnxruntime", r["tower"], r["batch"], None if r["tower"] == "image" else 77)
    ratio = f"{r['items_per_s'] / o['items_per_s']:.2f}x" if o else "-"
    lines.append(f"| {r['tower']} | {r.get('precision', 'f32')} | {r['batch']} | {r['tokens'] or '-'} | {r['ms_per_batch']:.1f} | {r['items_per_s']:.1f} | "
                 f"{r['gflops']:.0f} | {r['peak_rss_mb']:.0f} | {t['items_per_s'] if t else float('nan'):.1f} | "
                 f"{o['items_per_s'] if o else float('nan'):.1f} | {ratio} |")
lines += ["", "PyTorch and ONNX Runtime compute every text position up to the 77-token context (as Hugging Face's "
          "processor pads); clipc stops at the longest caption of the batch, which gives identical pooled features.",
          "Peak RSS: PyTorch " + ", ".join(f"{r['peak_rss_mb']:.0f}" for r in runs if r["peer"] == "pytorch")[:60] +
          " MB; ONNX Runtime " + ", ".join(f"{r['peak_rss_mb']:.0f}" for r in runs if r["peer"] == "onnxruntime")[:60] + " MB.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
