#!/bin/sh
# run.sh — runs the libFuzzer targets of tests/fuzz/ (built by `make fuzz-bins` into build-fuzz/).
#   run.sh campaign SECONDS [TARGET...]  fuzz each target SECONDS on its corpus (new inputs go to
#                                        build-fuzz/corpus-new/<target>/, crashes to
#                                        build-fuzz/crashes/<target>/); known bugs do not stop it
#                                        (-fork=1 -ignore_crashes=1). Log: build-fuzz/logs/<target>.log
#   run.sh regress [TARGET...]           each target over its seed corpus and its committed crash
#                                        reproducers (tests/fuzz/regress/<target>/): deterministic
#                                        (-runs=0), unless FUZZ_REGRESS_SECONDS > 0 adds that much
#                                        random fuzzing; fails on any crash. Ends with "N passed, M failed".
# Per-target options (max_len, dictionary) are in target_options below.
cd "$(dirname "$0")/../.." || exit 2
build=${FUZZ_BUILD:-build-fuzz}
mode=${1:-regress}
[ $# -gt 0 ] && shift
seconds=60
if [ "$mode" = campaign ]; then
    seconds=${1:-60}
    [ $# -gt 0 ] && shift
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    echo "fuzz: ${FUZZ_CC:-clang} not found: the fuzz targets need clang with libFuzzer (scripts/install-deps.sh installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi

targets="$*"
[ -n "$targets" ] || targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')

target_options() { # prints the libFuzzer options of one target
    case "$1" in
        fuzz_safetensors) echo "-dict=tests/fuzz/safetensors.dict" ;;
        fuzz_config | fuzz_tokenizer_files) echo "-dict=tests/fuzz/json.dict" ;;
        fuzz_dataset | fuzz_manifest) echo "-dict=tests/fuzz/json.dict" ;;
        fuzz_tokenizer_text) echo "-max_len=4096" ;;
        fuzz_tar) echo "-max_len=16384" ;;
        fuzz_http) echo "-dict=tests/fuzz/http.dict" ;;
        fuzz_index | fuzz_embedding_cache | fuzz_checkpoint) echo "-max_len=65536" ;;
        *) echo "" ;;
    esac
}

pass=0
fail=0
for t in $targets; do
    bin="$build/$t"
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz/$t: $bin is missing (make fuzz-bins)"
        fail=$((fail + 1))
        continue
    fi
    corpus="$build/corpus/$t"
    regress="tests/fuzz/regress/$t"
    mkdir -p "$corpus" "$build/logs"
    dirs="$corpus"
    [ -d "$regress" ] && dirs="$dirs $regress"
    opts=$(target_options "$t")
    if [ "$mode" = campaign ]; then
        new="$build/corpus-new/$t"
        crashes="$build/crashes/$t"
        mkdir -p "$new" "$crashes"
        log="$build/logs/$t.log"
        echo "== $t: ${seconds}s"
        # a copy runs (fork mode re-executes it), so that rebuilding during a campaign is safe
        mkdir -p "$build/campaign-bin"
        cp "$bin" "$build/campaign-bin/$t"
        # shellcheck disable=SC2086
        nice "$build/campaign-bin/$t" $opts -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=20 -rss_limit_mb=2048 \
            -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes/" "$new" $dirs >"$log" 2>&1
        grep -E '^#[0-9]+' "$log" | tail -n 1
        n_crash=$(find "$crashes" -type f | wc -l)
        echo "   crash/timeout/oom files: $n_crash (in $crashes)"
    else
        tmp=$(mktemp -d)
        log="$build/logs/$t.regress.log"
        # shellcheck disable=SC2086
        how="-runs=0"
        [ "${FUZZ_REGRESS_SECONDS:-0}" -gt 0 ] && how="-max_total_time=$FUZZ_REGRESS_SECONDS"
        # shellcheck disable=SC2086
        if "$bin" $opts -timeout=20 -rss_limit_mb=2048 $how -artifact_prefix="$tmp/" "$tmp" $dirs >"$log" 2>&1; then
            echo "ok   fuzz/$t ($(grep -E '^#[0-9]+' "$log" | tail -n 1 | awk '{print $1, $2, $3, $4, $5}'))"
            pass=$((pass + 1))
        else
            echo "FAIL fuzz/$t (log $log; crash input in $tmp)"
            grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ ' "$log" | head -n 20 | sed 's/^/    /'
            fail=$((fail + 1))
            continue
        fi
        rm -rf "$tmp"
    fi
done
[ "$mode" = campaign ] && exit 0
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
