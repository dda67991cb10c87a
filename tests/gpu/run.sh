#!/bin/bash
# run.sh — the one GPU check of clipc's CUDA backend: everything that needs a GPU, in one call,
# within ~8 minutes on an H100 (each section bounded by its own limit and a global budget).
#
#   bash tests/gpu/run.sh            (from the repository root; OUT=dir for the results, default $TMPDIR/clipc-gpu-out)
#
# Sections, in order of importance:
#   1 environment   GPU, driver, compilers, libraries, PyTorch
#   2 build         make CUDA=1 gpu-check (sm_90): engine + kernels + CUDA only, so it links on
#                   images without the full build's -dev packages
#   3 check_ops     every op, forward and backward, CUDA vs CPU on fresh random inputs (f32 rel
#                   <= 1e-5; bf16 3e-2 for GEMM/attention results), transformer blocks, AdamW,
#                   grad norm, CUDA-graph replay, bf16 weight refresh, bad input
#   4 vit parity    random ViT-B/32 visual tower on the graph engine: CUDA f32/bf16 vs CPU and vs
#                   PyTorch float64 (cosine >= 0.99999 f32, >= 0.999 bf16)
#   5 train parity  10 AdamW steps, CUDA vs CPU losses (f32 rel <= 1e-4; bf16 reported)
#   6 benchmarks    benchmarks/cuda/run.sh: ceilings, kernel dev files, ViT-B/32 inference and
#                   train step vs PyTorch eager (writes benchmarks/out/cuda.md, copied to $OUT)
#   7 clipc embed   `clipc embed --device cuda` vs CPU (tests/gpu/cli_embed.sh)   } "not available
#   8 clipc train   `clipc train --device cuda` vs CPU (tests/gpu/cli_train.sh)   }  yet" until the
#                                                                                    commands exist
#   9 sanitizers    compute-sanitizer memcheck and racecheck on the attention kernels
# Files under $OUT: run.log (everything), summary.md (the table), check_ops.md, cuda.md,
# results.txt (RESULT lines). The summary table is printed last. Exit status: 0 when nothing failed.
cd "$(dirname "$0")/../.." || exit 2
OUT=${OUT:-${TMPDIR:-/tmp}/clipc-gpu-out}
BUDGET=${GPU_CHECK_BUDGET:-460} # seconds for all sections (the device lease allows one 10-minute call)
PYTHON=${PYTHON:-python3}
BUILD=build-cuda
SUFFIX=
CHECK_ARGS=
VIT_PARITY_ARGS="--config b32 --batch 4"
TRAIN_ARGS="--config small --batch 8 --steps 10"
if [ "${GPU_CHECK_FAKE:-0}" = 1 ]; then
    # rehearsal on a machine without a GPU: the same script on the host-emulator builds (small
    # shapes), to test this script's plumbing; the benchmarks find no GPU and skip
    BUILD=build
    SUFFIX=_fake
    CHECK_ARGS=--quick
    VIT_PARITY_ARGS="--config tiny --batch 2"
    TRAIN_ARGS="--config tiny --batch 4 --steps 3"
fi
CHECK_OPS=$BUILD/tests/gpu/check_ops$SUFFIX
VIT=$BUILD/tests/gpu/vit_check$SUFFIX
mkdir -p "$OUT"
LOG=$OUT/run.log
SUMMARY=$OUT/summary.md
RESULTS=$OUT/results.txt
: >"$LOG"
: >"$RESULTS"
START=$(date +%s)
DEADLINE=$((START + BUDGET))
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export PATH="$PATH:/usr/local/cuda/bin"
export NVIDIA_TF32_OVERRIDE=0 # f32 parity must never run on TF32 (clipc does not ask for it anyway)
SECTIONS=()

log() { echo "$*" | tee -a "$LOG"; }

# section NAME LIMIT CMD...: runs CMD with output appended to the log, bounded by LIMIT seconds and
# by the global budget. Exit codes: 0 ok, 3 "not available yet" (skip), anything else fail.
section() {
    local name=$1 limit=$2 left rc t0 status
    shift 2
    left=$((DEADLINE - $(date +%s)))
    if [ "$left" -lt 20 ]; then
        SECTIONS+=("$name|skipped|time budget spent|0")
        log "== $name: skipped (time budget spent)"
        return 1
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    log "== $name (limit ${limit}s)"
    t0=$(date +%s)
    # timeout signals its whole process group: make, nvcc and test programs all stop
    timeout -k 10 "$limit" bash -c '"$@"' section "$@" >"$TMP/section.out" 2>&1
    rc=$?
    cat "$TMP/section.out" >>"$LOG"
    sed -n "s/^RESULT /RESULT $name /p" "$TMP/section.out" >>"$RESULTS"
    case $rc in
        0) status=ok ;;
        3) status="not available yet" ;;
        124 | 137) status="FAIL (timed out after ${limit}s)" ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    local detail
    detail=$(grep -E '^(SUMMARY|[0-9]+ passed, [0-9]+ failed|not available yet)' "$TMP/section.out" | tail -n 1 | sed 's/^SUMMARY //')
    [ -z "$detail" ] && detail=$(tail -n 1 "$TMP/section.out" | cut -c1-120)
    SECTIONS+=("$name|$status|$detail|$(($(date +%s) - t0))")
    log "-- $name: $status ($(($(date +%s) - t0))s)"
    return $rc
}

env_report() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw --format=csv 2>&1 | head -n 3
    nvcc --version 2>&1 | tail -n 2
    gcc --version 2>&1 | head -n 1
    echo "cores: $(nproc); memory: $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}')"
    for lib in openblas cjson pcre2-8 utf8proc microhttpd turbojpeg png jpeg; do
        if ldconfig -p 2>/dev/null | grep -q "lib$lib\.so"; then echo "lib$lib: present"; else echo "lib$lib: missing"; fi
    done
    printf '#include <cblas.h>\n' | gcc -E -x c - >/dev/null 2>&1 && echo "cblas.h: present" || echo "cblas.h: missing (reference cblas shim used)"
    $PYTHON -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())' 2>&1 | tail -n 1
    command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>&1
    echo "SUMMARY $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)$(command -v nvidia-smi >/dev/null || echo 'no nvidia-smi: no GPU here')"
}

build() {
    if [ -n "$SUFFIX" ]; then
        make -j"$(nproc)" "$CHECK_OPS" "$VIT" || return 1
        echo "SUMMARY built the host-emulator check programs (rehearsal)"
        return 0
    fi
    # cuBLAS normally comes with the toolkit; if not, use the pip wheel PyTorch brings
    local extra_ld="" extra_c="" home
    home=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
    if [ ! -e "$home/lib64/libcublas.so" ] && [ ! -e "$home/lib/libcublas.so" ]; then
        local site
        site=$($PYTHON -c 'import nvidia.cublas as m; print(list(m.__path__)[0])' 2>/dev/null)
        if [ -n "$site" ] && [ -d "$site/lib" ]; then
            mkdir -p "$TMP/cudalibs"
            ln -sf "$(ls "$site"/lib/libcublas.so.* | head -n 1)" "$TMP/cudalibs/libcublas.so"
            ln -sf "$(ls "$site"/lib/libcublasLt.so.* | head -n 1)" "$TMP/cudalibs/libcublasLt.so"
            extra_ld="-L$TMP/cudalibs -Wl,-rpath,$site/lib"
            extra_c="-I$site/include"
            echo "cuBLAS from $site (not in $home)"
        fi
    fi
    make -j"$(nproc)" CUDA=1 CUDA_EXTRA_LDFLAGS="$extra_ld" CUDA_EXTRA_CFLAGS="$extra_c" gpu-check || return 1
    ls -l $BUILD/tests/gpu/check_ops $BUILD/tests/gpu/vit_check $BUILD/bench/cuda/ceilings $BUILD/dev/*
    echo "SUMMARY built check_ops, vit_check, ceilings, $(ls $BUILD/dev | wc -l) dev files"
}

check_ops() { $CHECK_OPS $CHECK_ARGS --table "$OUT/check_ops.md"; }

vit_parity() {
    local rc=0
    # shellcheck disable=SC2086
    $VIT parity "$TMP/vit" $VIT_PARITY_ARGS >"$TMP/vit.out" 2>&1 || rc=1
    $PYTHON benchmarks/cuda/vit_torch.py parity "$TMP/vit" >>"$TMP/vit.out" 2>&1 || rc=1
    cat "$TMP/vit.out"
    echo "SUMMARY $(grep -c '^RESULT.* ok$' "$TMP/vit.out") checks ok, $(grep -c '^RESULT.*FAIL' "$TMP/vit.out") failed"
    return $rc
}

train_parity() {
    # shellcheck disable=SC2086
    $VIT train $TRAIN_ARGS >"$TMP/train.out" 2>&1
    local rc=$?
    cat "$TMP/train.out"
    echo "SUMMARY $(grep -o 'check=train_loss_rel_cuda_f32_vs_cpu value=[^ ]*' "$TMP/train.out" | sed 's/check=//') (limit 1e-4)"
    return $rc
}

benchmarks() {
    # benchmarks measure the card as it is (the TF32 ceiling row needs TF32 allowed)
    env -u NVIDIA_TF32_OVERRIDE BUILD=$BUILD PYTHON=$PYTHON LOG="$TMP/bench.log" BENCH_DEADLINE=$((DEADLINE - 60)) \
        RESULTS_COPY="$TMP/bench_results.txt" bash benchmarks/cuda/run.sh
    local rc=$?
    cat "$TMP/bench.log" 2>/dev/null
    sed 's/^RESULT /RESULT /' "$TMP/bench_results.txt" 2>/dev/null
    [ -f benchmarks/out/cuda.md ] && cp benchmarks/out/cuda.md "$OUT/cuda.md"
    grep -q '^FAILED' "$TMP/bench_results.txt" 2>/dev/null && return 1
    return $rc
}

# Sections 7 and 8 run hook scripts that drive the clipc CLI; they exit 3 ("not available yet")
# while `clipc embed` / `clipc train` or tests/reference/clip_ref.py do not exist.
cli_section() {
    local script=$1 command=$2
    if [ ! -f "$script" ]; then
        echo "not available yet: $script does not exist"
        return 3
    fi
    if ! grep -q "cmd_$command" tools/commands.h 2>/dev/null; then
        echo "not available yet: clipc has no $command command"
        return 3
    fi
    make -j"$(nproc)" CUDA=1 $BUILD/clipc >"$TMP/clipc_build.log" 2>&1 || {
        tail -n 20 "$TMP/clipc_build.log"
        echo "clipc (CUDA=1) does not build on this image (missing -dev packages? see the environment section)"
        return 1
    }
    CLIPC=$PWD/$BUILD/clipc PYTHON=$PYTHON TMPDIR=$TMP bash "$script"
}

sanitizers() {
    local cs
    cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    if [ ! -x "$cs" ]; then
        echo "not available yet: compute-sanitizer not found"
        return 3
    fi
    if [ -n "$SUFFIX" ]; then
        echo "not available yet: no GPU (rehearsal)"
        return 3
    fi
    "$cs" --tool memcheck --error-exitcode 9 $CHECK_OPS --quick --precision bf16 --filter attention || return 1
    "$cs" --tool racecheck --error-exitcode 9 $CHECK_OPS --quick --precision both --filter attention_d12_causal || return 1
    echo "SUMMARY memcheck and racecheck clean on the attention kernels"
}

# the section functions run in child shells (under timeout): they need these
export -f env_report build check_ops vit_parity train_parity benchmarks cli_section sanitizers
export BUILD SUFFIX CHECK_ARGS VIT_PARITY_ARGS TRAIN_ARGS CHECK_OPS VIT OUT PYTHON TMP DEADLINE

section environment 30 env_report
if section build 300 build; then
    section check_ops 240 check_ops
    section vit_parity 150 vit_parity
    section train_parity 120 train_parity
    section benchmarks 300 benchmarks
    section clipc_embed 120 cli_section tests/gpu/cli_embed.sh embed
    section clipc_train 150 cli_section tests/gpu/cli_train.sh train
    section sanitizers 150 sanitizers
fi

# ---- summary ----
failed=0
{
    echo "## GPU check $(date -u '+%Y-%m-%d %H:%M UTC'), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
    echo
    echo "| section | status | detail | seconds |"
    echo "|---|---|---|---|"
    for row in "${SECTIONS[@]}"; do
        IFS='|' read -r name status detail secs <<<"$row"
        echo "| $name | $status | ${detail//|/\/} | $secs |"
        case $status in FAIL*) failed=$((failed + 1)) ;; esac
    done
    echo
    if grep -q '^RESULT' "$RESULTS"; then
        echo "| result | value |"
        echo "|---|---|"
        grep '^RESULT' "$RESULTS" | grep -E 'check=|bench=vit|bench=torch' | sed -E 's/^RESULT ([a-z_]+) /\1: /' |
            awk '{ key = $1 " " $2; $1 = ""; $2 = ""; print "| " key " |" $0 " |" }'
        echo
    fi
    [ -f "$OUT/cuda.md" ] && sed -n '/### ViT-B/,$p' "$OUT/cuda.md" && echo
    echo "total $(($(date +%s) - START)) s; $failed section(s) failed"
} >"$SUMMARY"
cat "$SUMMARY" | tee -a "$LOG"
[ "$failed" = 0 ]
