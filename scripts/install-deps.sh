#!/bin/sh
# install-deps.sh — installs the Debian packages clipc needs, only those missing (idempotent).
# Build: compiler, OpenBLAS, libjpeg-turbo, libpng, libwebp, giflib, libtiff, zlib, cJSON, PCRE2, utf8proc,
# libmicrohttpd, Open MPI (data-parallel `mpirun -np N clipc train`; tests/cli/train_mpi.sh).
# Tests and benchmarks: the Python references (torch, numpy, PIL, faiss, hnswlib), run with
# /usr/bin/python3; venv + pip for the Python package's test; node + npm for the ONNX Runtime check. Set CLIPC_NO_PYTHON_DEPS=1 to skip those (the build alone needs none of them).
set -e
packages="build-essential pkg-config libopenblas-dev libturbojpeg0-dev libjpeg-dev libpng-dev libwebp-dev libgif-dev
libtiff-dev zlib1g-dev
libcjson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
openmpi-bin libopenmpi-dev"
# fuzzing (make fuzz, tests/cli/fuzz_regress.sh): clang with libFuzzer and its OpenMP runtime
packages="$packages clang libclang-rt-dev libomp-dev"
if [ "${CLIPC_NO_PYTHON_DEPS:-0}" != 1 ]; then
    packages="$packages python3 python3-torch python3-numpy python3-pil python3-faiss python3-hnswlib python3-regex"
    packages="$packages python3-matplotlib" # benchmarks/index: the recall vs queries/s plot
    # tests/cli/python_pkg.sh: the Python package installed into a fresh venv (offline, Debian's setuptools)
    packages="$packages python3-venv python3-pip python3-setuptools"
    # tests/cli/onnx_export.sh: node and npm install ONNX Runtime (onnxruntime-node) into build/onnx-node
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"
fi
# --browser: also what `make test-browser` needs (Debian's chromium; node and npm for playwright-core,
# from Debian unless some node and npm are installed already, e.g. NodeSource's, which conflict with it)
if [ "${1:-}" = "--browser" ]; then
    packages="$packages chromium"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"
fi
missing=""
for pkg in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi
