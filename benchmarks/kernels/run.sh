#!/bin/sh
# run.sh — CPU kernel benchmarks: every op (forward and backward) vs PyTorch on ViT-B/32 shapes
# and on sizes above the caches, with this machine's copy bandwidth and SGEMM peak measured in
# the same run, plus a per-op profile of a random ViT-B/32. Writes benchmarks/out/kernels.md.
# Also runs the GEMM benchmark (benchmarks/kernels/run_gemm.sh) when it exists.
#
# usage: sh benchmarks/kernels/run.sh        (from anywhere; builds what is missing)
#   KERNELS_REPEATS=N  interleaved clipc/PyTorch repetitions, best kept (default 3: the machine is shared)
cd "$(dirname "$0")/../.." || exit 2
repeats=${KERNELS_REPEATS:-3}
python=/usr/bin/python3
bench=build/bench/kernels/bench_ops
profile=build/bench/kernels/profile_clip

if [ -f benchmarks/kernels/run_gemm.sh ]; then
    sh benchmarks/kernels/run_gemm.sh || echo "run_gemm.sh failed" >&2
fi

if [ ! -x "$bench" ] || [ ! -x "$profile" ]; then
    make -s bench-bins || exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
cores=$(nproc)
threads="1"
[ "$cores" -gt 1 ] && threads="1 $cores"

{
    echo "## CPU kernels (benchmarks/kernels)"
    echo
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores."
    echo "Command: \`sh benchmarks/kernels/run.sh\` (bench_ops + bench_ops.py, $repeats interleaved repetitions, best kept; then profile_clip)."
} > "$tmp/header.md"

rep=1
while [ "$rep" -le "$repeats" ]; do
    for t in $threads; do
        echo "== kernels: repetition $rep, $t thread(s): clipc"
        "$bench" --threads "$t" > "$tmp/clipc-$t-$rep.jsonl" || { echo "bench_ops failed" >&2; exit 1; }
        echo "== kernels: repetition $rep, $t thread(s): PyTorch"
        "$python" benchmarks/kernels/bench_ops.py --threads "$t" > "$tmp/torch-$t-$rep.jsonl" ||
            echo "bench_ops.py failed: PyTorch column left empty" >&2
    done
    rep=$((rep + 1))
done

echo "== kernels: ViT-B/32 profiles"
"$profile" image 32 "$cores" 3 --markdown > "$tmp/profile-1.md" &&
    "$profile" image 32 1 2 --markdown > "$tmp/profile-2.md" &&
    "$profile" image 1 "$cores" 20 --markdown > "$tmp/profile-3.md" &&
    "$profile" text 32 "$cores" 3 --markdown > "$tmp/profile-4.md" || echo "profile_clip failed" >&2

mkdir -p benchmarks/out
"$python" benchmarks/kernels/report.py "$tmp" "$tmp/header.md" > benchmarks/out/kernels.md.tmp &&
    mv benchmarks/out/kernels.md.tmp benchmarks/out/kernels.md && echo "wrote benchmarks/out/kernels.md"
