#!/bin/sh
# run_ops.sh — CPU kernel benchmarks: every op (forward and backward) vs PyTorch on ViT-B/32
# shapes and on sizes above the caches, with this machine's copy bandwidth and SGEMM peak measured
# in the same run, plus a per-op profile of a random ViT-B/32. Writes benchmarks/out/kernels.md.
# (benchmarks/kernels/run.sh runs it after the GEMM benchmark.)
#
# usage: sh benchmarks/kernels/run_ops.sh    (from anywhere; builds what is missing)
#   KERNELS_REPEATS=N    interleaved clipc/PyTorch repetitions, best kept (default 3)
#   KERNELS_WAIT_IDLE=S  before each run, wait up to S seconds (default 60) for the CPUs to be idle:
#                        on a shared machine a busy sibling core stalls every 2-thread op at its barrier
cd "$(dirname "$0")/../.." || exit 2
repeats=${KERNELS_REPEATS:-3}
wait_idle=${KERNELS_WAIT_IDLE:-60}
python=/usr/bin/python3
bench=build/bench/kernels/bench_ops
profile=build/bench/kernels/profile_clip

if [ ! -x "$bench" ] || [ ! -x "$profile" ]; then
    make -s bench-bins || exit 1
fi

# CPU busy % over one second, from /proc/stat (user+nice+system+irq+softirq vs idle+iowait)
busy_percent() {
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
    echo "$a $b" | awk '{db = $3 - $1; di = $4 - $2; printf "%d", 100 * db / (db + di + 1)}'
}

wait_quiet() {
    [ -r /proc/stat ] || return 0
    waited=0
    while [ "$waited" -lt "$wait_idle" ]; do
        [ "$(busy_percent)" -lt 10 ] && return 0
        waited=$((waited + 2))
        sleep 1
    done
    echo "   (CPUs still busy after ${wait_idle}s: timings may be disturbed)"
}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
cores=$(nproc)
threads="1"
[ "$cores" -gt 1 ] && threads="1 $cores"

{
    echo "## CPU kernels (benchmarks/kernels)"
    echo
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores."
    echo "Command: \`sh benchmarks/kernels/run_ops.sh\` (bench_ops + bench_ops.py, $repeats interleaved repetitions, best kept; then profile_clip)."
} > "$tmp/header.md"

rep=1
while [ "$rep" -le "$repeats" ]; do
    for t in $threads; do
        echo "== kernels: repetition $rep, $t thread(s): clipc"
        wait_quiet
        "$bench" --threads "$t" > "$tmp/clipc-$t-$rep.jsonl" || { echo "bench_ops failed" >&2; exit 1; }
        echo "== kernels: repetition $rep, $t thread(s): PyTorch"
        wait_quiet
        "$python" benchmarks/kernels/bench_ops.py --threads "$t" > "$tmp/torch-$t-$rep.jsonl" ||
            echo "bench_ops.py failed: PyTorch column left empty" >&2
    done
    rep=$((rep + 1))
done

echo "== kernels: ViT-B/32 profiles"
n=0
for config in "image 32 $cores 3" "image 32 1 2" "image 1 $cores 20" "text 32 $cores 3"; do
    n=$((n + 1))
    wait_quiet
    # shellcheck disable=SC2086
    "$profile" $config --markdown > "$tmp/profile-$n.md" || echo "profile_clip $config failed" >&2
done
# OpenBLAS's pthreads spin for a while after each GEMM and then compete with the OpenMP threads of
# the other kernels for the cores; with OpenBLAS as the GEMM, also show the profile with that spin
# cut short (OPENBLAS_THREAD_TIMEOUT=4), which isolates the kernels' own cost.
if grep -q '"gemm":"openblas"' "$tmp/clipc-1-1.jsonl" 2>/dev/null && [ "$cores" -gt 1 ]; then
    wait_quiet
    {
        echo "With OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS threads stop spinning right after each GEMM):"
        echo
        OPENBLAS_THREAD_TIMEOUT=4 "$profile" image 32 "$cores" 3 --markdown
    } > "$tmp/profile-5.md" || echo "profile_clip failed" >&2
fi

mkdir -p benchmarks/out
"$python" benchmarks/kernels/report.py "$tmp" "$tmp/header.md" > benchmarks/out/kernels.md.tmp &&
    mv benchmarks/out/kernels.md.tmp benchmarks/out/kernels.md && echo "wrote benchmarks/out/kernels.md"
