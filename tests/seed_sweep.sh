#!/bin/sh
# seed_sweep.sh — runs the release unit suite once per seed (CLIPC_TEST_SEED = 1..N, or the seeds
# given) to find tests whose pass/fail depends on the random draw. Not part of `make test`: 50 seeds
# take ~40 minutes on 2 cores. Build first (`make test-unit`).
# Usage: tests/seed_sweep.sh [-n N] [-f FILTER] [SEED...]
#   -n N       seeds 1..N (default 50) when no seeds are given
#   -f FILTER  run only the unit tests whose name contains FILTER
# Prints a line per seed (ok, or each failing test with its first messages) and ends with
# "seeds: N passed, M failed" counted over seeds.
cd "$(dirname "$0")/.." || exit 2
n=50
filter=""
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -f) filter=$2; shift 2 ;;
        *) break ;;
    esac
done
[ -x build/tests/unit ] || { echo "seed_sweep: build/tests/unit is missing: run make test-unit" >&2; exit 2; }
seeds="$*"
[ -n "$seeds" ] || seeds=$(seq 1 "$n")
export CLIPC_SRC="$(pwd)"
log=$(mktemp)
pass=0
fail=0
for seed in $seeds; do
    t0=$(date +%s)
    # shellcheck disable=SC2086
    CLIPC_TEST_SEED=$seed build/tests/unit $filter >"$log" 2>&1
    if grep -q '^FAIL ' "$log" || ! grep -qE '^[0-9]+ passed, 0 failed$' "$log"; then
        fail=$((fail + 1))
        grep '^FAIL ' "$log" | sed "s/^/seed $seed: /"
        grep -E 'failed: ' "$log" | head -n 3 | sed "s/^/    /"
        grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$log" || echo "seed $seed: the suite ended without a summary line"
    else
        pass=$((pass + 1))
        echo "seed $seed: ok ($(($(date +%s) - t0)) s)"
    fi
done
rm -f "$log"
echo "seeds: $pass passed, $fail failed"
[ "$fail" = 0 ]
