#!/bin/sh
# triage.sh — groups the crash / timeout / OOM files of a campaign (build-fuzz/crashes/<target>/) by
# where they fail: reruns each file and prints one line per distinct first error location, with a
# count and one example file.   Usage: tests/fuzz/triage.sh [TARGET...]
cd "$(dirname "$0")/../.." || exit 2
build=${FUZZ_BUILD:-build-fuzz}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
targets="$*"
[ -n "$targets" ] || targets=$(ls "$build/crashes" 2>/dev/null)
for t in $targets; do
    dir="$build/crashes/$t"
    [ -d "$dir" ] || continue
    n=$(find "$dir" -type f | wc -l)
    [ "$n" -gt 0 ] || continue
    echo "== $t: $n files"
    for f in "$dir"/*; do
        where=$(timeout 60 "$build/$t" -timeout=20 -rss_limit_mb=2048 "$f" 2>&1 |
            grep -m1 -E 'runtime error|ERROR: (Address|Leak)Sanitizer|ERROR: libFuzzer|SUMMARY' |
            sed -e 's/^==[0-9]*==//' -e 's/ on address 0x[0-9a-f]*.*//' -e 's/(pid [0-9]*)//')
        # the first stack frame in clipc's own sources
        frame=$(timeout 60 "$build/$t" -timeout=20 -rss_limit_mb=2048 "$f" 2>&1 |
            grep -m1 -E '#[0-9]+ 0x[0-9a-f]+ in [a-z_0-9]+ /.*/(engine|data|index|train|tools|kernels)/' |
            sed -E 's/.* in ([a-z_0-9]+) .*\/((engine|data|index|train|tools|kernels)\/[^ ]*).*/\1 \2/')
        echo "${where:-no error on rerun} @ ${frame:-?}|$f"
    done | sort | awk -F'|' '{ n[$1]++; ex[$1] = $2 } END { for (k in n) printf "  %4d  %s\n        e.g. %s\n", n[k], k, ex[k] }'
done
