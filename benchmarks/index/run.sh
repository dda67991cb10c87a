#!/bin/sh
# run.sh — the index benchmark: clipc vs faiss (Debian python3-faiss) and hnswlib (python3-hnswlib)
# on embedding-like data; writes benchmarks/out/index.md and benchmarks/out/index_recall_qps.png.
# Needs `make` (build/clipc) and `make bench-bins` (build/bench/index/flat_bench).
# Usage: benchmarks/index/run.sh [bench.py options], e.g. --sizes 100000 1000000 (default 100000);
#        see benchmarks/index/bench.py --help. Takes about 15-20 minutes for 100k vectors on 2 cores.
set -e
cd "$(dirname "$0")/../.."
[ -x build/clipc ] || make -j2 all
[ -x build/bench/index/flat_bench ] || make -j2 build/bench/index/flat_bench
mkdir -p benchmarks/out
exec /usr/bin/python3 benchmarks/index/bench.py "$@"
