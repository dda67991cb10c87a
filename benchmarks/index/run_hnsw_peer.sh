#!/bin/sh
# run_hnsw_peer.sh — builds benchmarks/index/hnsw_peer.cpp against hnswlib's public source and runs it.
#
# hnswlib is header-only; HNSWLIB_DIR names a checkout (the folder holding hnswlib/hnswlib.h), kept
# outside the project. The figures in benchmarks/RESULTS.md used github.com/nmslib/hnswlib at
# commit c1b9b79af3d10c6ee7b5d0afa1ce851ae975254c (2024-06-17), unpacked to /work/peers/hnswlib.
# Both sides are compiled with -O3 -march=native (clipc's library is the release build here,
# linked in; its kernels choose AVX2/AVX-512 at run time).
#
# usage: HNSWLIB_DIR=/path/to/hnswlib benchmarks/index/run_hnsw_peer.sh [--n N] [--dim D] [--queries Q]
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
: "${HNSWLIB_DIR:?set HNSWLIB_DIR to an hnswlib checkout (git clone https://github.com/nmslib/hnswlib)}"
test -f "$HNSWLIB_DIR/hnswlib/hnswlib.h" || { echo "run_hnsw_peer.sh: $HNSWLIB_DIR/hnswlib/hnswlib.h not found" >&2; exit 1; }
make -C "$src" -s -j2 build/libclipc.a
mkdir -p "$src/build/bench/index"
g++ -std=c++17 -O3 -march=native -fopenmp -I"$HNSWLIB_DIR" -I"$src" -D_GNU_SOURCE \
    "$src/benchmarks/index/hnsw_peer.cpp" "$src/build/libclipc.a" \
    -lopenblas -lz -lm -lpthread -o "$src/build/bench/index/hnsw_peer"
exec "$src/build/bench/index/hnsw_peer" "$@"
