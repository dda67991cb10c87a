#!/bin/bash
# run.sh — CUDA benchmarks (part of `make bench` and of tests/gpu/run.sh): measured ceilings (copy
# bandwidth, cuBLAS GEMM rates), every kernel development file against them, and the ViT-B/32
# visual tower (tests/gpu/vit_check) against PyTorch eager on the same GPU in the same run.
# Writes benchmarks/out/cuda.md only when a GPU ran the benchmarks: without one it says so and
# leaves any earlier results untouched (no numbers are ever made up).
#
# The PyTorch peer sets allow_tf32 off for its f32 numbers itself.
# Environment: BUILD (default build-cuda), PYTHON (default python3), LOG (append raw output there),
# BENCH_DEADLINE (epoch seconds after which remaining steps are skipped), BATCH (ViT batch, 256).
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build-cuda}
PYTHON=${PYTHON:-python3}
LOG=${LOG:-/dev/null}
BATCH=${BATCH:-256}
DEADLINE=${BENCH_DEADLINE:-$(($(date +%s) + 600))}
out=benchmarks/out/cuda.md

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "cuda benchmarks: no NVIDIA GPU here; skipped ($out left as it was)"
    exit 0
fi
if [ ! -x "$BUILD/bench/cuda/ceilings" ] || [ ! -x "$BUILD/tests/gpu/vit_check" ]; then
    make -j"$(nproc)" CUDA=1 gpu-check >>"$LOG" 2>&1 || { echo "cuda benchmarks: build failed (see $LOG)"; exit 1; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.txt
: >"$results"

# run NAME LIMIT CMD...: output to the log and to the results file (RESULT lines), bounded by the
# smaller of LIMIT and the time left before DEADLINE.
run() {
    name=$1 limit=$2
    shift 2
    left=$((DEADLINE - $(date +%s)))
    if [ "$left" -lt 15 ]; then
        echo "cuda benchmarks: $name skipped (time budget spent)" | tee -a "$LOG"
        echo "SKIPPED $name" >>"$results"
        return 1
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    echo "== bench $name (limit ${limit}s): $*" >>"$LOG"
    timeout -k 5 "$limit" "$@" >"$tmp/$name.out" 2>&1
    rc=$?
    cat "$tmp/$name.out" >>"$LOG"
    sed -n "s/^RESULT /RESULT $name /p" "$tmp/$name.out" >>"$results"
    [ $rc = 0 ] || echo "FAILED $name rc=$rc" >>"$results"
    return $rc
}

value() { # value FILE BENCH KEY: the KEY=... of the first RESULT line mentioning BENCH
    grep -F "$2" "$1" | head -n 1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}

run ceilings 90 "$BUILD/bench/cuda/ceilings"
ceil=$(grep '^CEILINGS' "$tmp/ceilings.out" 2>/dev/null)
copy_gbs=$(echo "$ceil" | tr ' ' '\n' | sed -n 's/^copy_gbs=//p')
bf16_tflops=$(echo "$ceil" | tr ' ' '\n' | sed -n 's/^bf16_tflops=//p')
f32_tflops=$(echo "$ceil" | tr ' ' '\n' | sed -n 's/^f32_tflops=//p')
ceil_args="--copy-gbs ${copy_gbs:-0} --bf16-tflops ${bf16_tflops:-0} --f32-tflops ${f32_tflops:-0}"
for dev in layernorm softmax gelu adamw crossentropy attention; do
    # shellcheck disable=SC2086
    run "dev_$dev" 90 "$BUILD/dev/$dev" $ceil_args
done
run vit_clipc 150 "$BUILD/tests/gpu/vit_check" bench --config b32 --batch "$BATCH" --iters 20
run vit_torch 150 "$PYTHON" benchmarks/cuda/vit_torch.py bench --config b32 --batch "$BATCH" --iters 20

# ---- markdown section ----
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
mkdir -p benchmarks/out
{
    echo "## CUDA backend"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $gpu; $(nproc) CPU cores. Command: \`bash tests/gpu/run.sh\`"
    echo "(benchmarks/cuda/run.sh). Ceilings measured in the same run; ViT numbers against PyTorch"
    echo "$($PYTHON -c 'import torch; print(torch.__version__)' 2>/dev/null) eager on the same GPU, batch $BATCH."
    echo
    echo "### Ceilings"
    echo
    grep '^|' "$tmp/ceilings.out" 2>/dev/null
    echo
    echo "### Kernels (kernels/cuda/dev/)"
    echo
    echo "| kernel | ms | rate | share of ceiling |"
    echo "|---|---|---|---|"
    grep '^RESULT dev_' "$results" | while read -r _ file rest; do
        name=$(echo "$rest" | sed 's/ ms=.*//')
        ms=$(echo "$rest" | tr ' ' '\n' | sed -n 's/^ms=//p')
        gbs=$(echo "$rest" | tr ' ' '\n' | sed -n 's/^gbs=//p')
        tf=$(echo "$rest" | tr ' ' '\n' | sed -n 's/^tflops=//p')
        pct=$(echo "$rest" | tr ' ' '\n' | sed -n 's/^pct_[a-z0-9_]*=//p')
        if [ -n "$gbs" ]; then rate="$gbs GB/s"; share="$pct% of copy"; else rate="$tf TFLOP/s"; share="$pct% of $(echo "$rest" | grep -o 'pct_[a-z0-9]*_peak' | sed 's/pct_//')"; fi
        echo "| ${file#dev_}: $name | $ms | $rate | $share |"
    done
    echo
    echo "### ViT-B/32 visual tower, batch $BATCH"
    echo
    ci_f32=$(value "$results" "vit_b32_infer precision=f32" img_per_s)
    ci_bf16=$(value "$results" "vit_b32_infer precision=bf16" img_per_s)
    ti_bf16=$(value "$results" "torch_vit_b32_infer precision=bf16" img_per_s)
    ti_f32=$(value "$results" "torch_vit_b32_infer precision=f32" img_per_s)
    ct_f32=$(value "$results" "vit_b32_train_step precision=f32" ms)
    ct_bf16=$(value "$results" "vit_b32_train_step precision=bf16" ms)
    tt=$(value "$results" "torch_vit_b32_train_step" ms)
    echo "| measure | clipc f32 | clipc bf16 | PyTorch eager | clipc bf16 / PyTorch | target |"
    echo "|---|---|---|---|---|---|"
    echo "| inference, images/s | ${ci_f32:-n/a} | ${ci_bf16:-n/a} | bf16 ${ti_bf16:-n/a} (f32 ${ti_f32:-n/a}) | $(ratio "$ci_bf16" "$ti_bf16")x | >= 1.2x |"
    echo "| train step (fwd+bwd+clip+AdamW), ms | ${ct_f32:-n/a} | ${ct_bf16:-n/a} | AMP bf16 ${tt:-n/a} | $(ratio "$tt" "$ct_bf16")x | >= 1.1x |"
    if grep -q '^FAILED\|^SKIPPED' "$results"; then
        echo
        echo "Not completed: $(grep '^FAILED\|^SKIPPED' "$results" | tr '\n' ';')"
    fi
} >"$out.tmp" && mv "$out.tmp" "$out"
cp "$results" "${RESULTS_COPY:-/dev/null}" 2>/dev/null
echo "cuda benchmarks: wrote $out"
