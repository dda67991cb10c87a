#!/bin/sh
# run.sh — the kernels benchmark area: runs every benchmarks/kernels/run_*.sh (each writes its own
# benchmarks/out/kernels_<name>.md section).
cd "$(dirname "$0")" || exit 2
status=0
for script in run_*.sh; do
    [ -e "$script" ] || continue
    sh "$script" || status=1
done
exit $status
