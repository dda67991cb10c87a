#!/bin/sh
# run.sh — the whole test suite, as `make test` runs it:
#   1. unit + parity tests, release build (build/tests/unit)
#   2. the same unit tests under ASan+UBSan, slow parity tests skipped (build-asan/tests/unit)
#   3. CLI tests: every tests/cli/*.sh, run with CLIPC=build/clipc; exit 0 = pass
# Prints each suite's output and ends with the total "N passed, M failed".
# Usage: tests/run.sh [SUBSTRING...]  (filters unit tests and CLI scripts by name)
cd "$(dirname "$0")/.." || exit 2
export CLIPC_SRC="$(pwd)"
export CLIPC="$CLIPC_SRC/build/clipc"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1"
total_pass=0
total_fail=0
log=$(mktemp)

add_counts() { # reads the "N passed, M failed" line of a suite's log
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "  suite '$1' ended without a summary line: counted as one failure"
        total_fail=$((total_fail + 1))
        return
    fi
    total_pass=$((total_pass + $(echo "$line" | cut -d' ' -f1)))
    total_fail=$((total_fail + $(echo "$line" | cut -d' ' -f3)))
}

start=$(date +%s)
echo "== unit tests (release)"
build/tests/unit "$@" 2>&1 | tee "$log"
add_counts release

echo "== unit tests (ASan+UBSan, slow tests skipped)"
build-asan/tests/unit --skip-slow "$@" 2>&1 | tee "$log"
add_counts asan

echo "== CLI tests"
pass=0
fail=0
for script in tests/cli/*.sh; do
    [ -e "$script" ] || continue
    name=$(basename "$script" .sh)
    if [ $# -gt 0 ]; then
        keep=0
        for f in "$@"; do case "$name" in *"$f"*) keep=1 ;; esac; done
        [ $keep = 1 ] || continue
    fi
    t0=$(date +%s)
    tmp=$(mktemp -d)
    if TMPDIR="$tmp" sh "$script" >"$tmp.log" 2>&1; then
        echo "ok   cli/$name ($(($(date +%s) - t0))s)"
        pass=$((pass + 1))
    else
        echo "FAIL cli/$name ($(($(date +%s) - t0))s)"
        sed 's/^/    /' "$tmp.log" | tail -n 40
        fail=$((fail + 1))
    fi
    rm -rf "$tmp" "$tmp.log"
done
echo "$pass passed, $fail failed" >"$log"
add_counts cli
rm -f "$log"
echo "== all suites done in $(($(date +%s) - start))s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
