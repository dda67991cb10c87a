#!/bin/sh
# run.sh — the kernels benchmark area (`benchmarks/run.sh kernels`): the GEMM benchmark
# (run_gemm.sh, writes benchmarks/out/kernels_gemm.md) when it exists, the bf16/int8 products
# (run_lowp.sh, benchmarks/out/kernels_lowp.md), then the other CPU ops
# (run_ops.sh, writes benchmarks/out/kernels.md).
cd "$(dirname "$0")/../.." || exit 2
status=0
if [ -f benchmarks/kernels/run_gemm.sh ]; then
    sh benchmarks/kernels/run_gemm.sh || { echo "run_gemm.sh failed" >&2; status=1; }
fi
sh benchmarks/kernels/run_lowp.sh || { echo "run_lowp.sh failed" >&2; status=1; }
sh benchmarks/kernels/run_ops.sh || { echo "run_ops.sh failed" >&2; status=1; }
exit $status
