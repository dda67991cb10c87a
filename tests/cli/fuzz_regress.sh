#!/bin/sh
# fuzz_regress.sh — the fuzz targets as a regression suite: builds them with clang (make fuzz-bins,
# a no-op when `make test` built them), writes the seed corpora, and runs every target over its seeds
# and committed crash reproducers (tests/fuzz/run.sh regress, deterministic). Fails clearly
# when clang is missing.
cd "${CLIPC_SRC:?}" || exit 2
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz_regress: clang is not installed: the fuzz targets need clang-14 with libFuzzer (run scripts/install-deps.sh)"
    exit 1
fi
make --no-print-directory -j2 fuzz-bins >"${TMPDIR:-/tmp}/fuzz-build.log" 2>&1 || {
    tail -n 30 "${TMPDIR:-/tmp}/fuzz-build.log"
    echo "fuzz_regress: building the fuzz targets failed"
    exit 1
}
tests/fuzz/make_corpus.sh build-fuzz || exit 1
tests/fuzz/run.sh regress
