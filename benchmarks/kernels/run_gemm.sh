#!/bin/sh
# run_gemm.sh — SGEMM benchmark: clipc's own kernel (float B and bf16 B) against OpenBLAS (as this
# environment configures it, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}; and once more with
# OPENBLAS_CORETYPE=SkylakeX, its AVX-512 path — read when the library loads, so in a separate
# process — its results checked against the own kernel) and PyTorch torch.mm, at 1 and 2 threads,
# plus the FMA peak. Every implementation runs in its own process (no thread pool of one spins
# while another is timed), and the implementations take turns shape by shape, each shape after
# waiting for the machine to be idle, so that load from other programs hits all of them alike
# (shapes disturbed by other programs are run again for a while; rows still disturbed are marked).
# Writes benchmarks/out/kernels_gemm.md.
# Usage: benchmarks/kernels/run_gemm.sh
#   GEMM_BENCH_SECONDS  timing per shape and implementation (default 0.45)
#   GEMM_BENCH_IDLE_WAIT  seconds to wait for an idle machine before each shape (default 60)
#   GEMM_BENCH_RETRY_MINUTES  how long to keep re-running shapes disturbed by other programs (default 60)
cd "$(dirname "$0")/../.." || exit 2
BIN=build/bench/kernels/bench_gemm
SECONDS_PER=${GEMM_BENCH_SECONDS:-0.45}
IDLE_WAIT=${GEMM_BENCH_IDLE_WAIT:-60}
RETRY_MINUTES=${GEMM_BENCH_RETRY_MINUTES:-60} # how long to keep re-running shapes measured on a busy machine
IDLE_BUSY_PERCENT=5 # the machine counts as idle below this CPU use (all programs, sampled over 1 s)
OUT=benchmarks/out/kernels_gemm.md
[ -x "$BIN" ] || make --no-print-directory "$BIN" >/dev/null || exit 1
mkdir -p benchmarks/out
tmp=$(mktemp -d) || exit 1
[ -n "$GEMM_BENCH_KEEP" ] || trap 'rm -rf "$tmp"' EXIT
have_torch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && have_torch=1

busy_percent() { # CPU use of the whole machine over one second
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
    echo "$a $b" | awk '{db = $3 - $1; di = $4 - $2; printf "%d", 100 * db / (db + di + 1)}'
}

# Waits up to IDLE_WAIT seconds for an idle machine; prints "idle" or "busy N%".
wait_idle() {
    waited=0
    while :; do
        busy=$(busy_percent)
        [ "$busy" -lt "$IDLE_BUSY_PERCENT" ] && { echo idle; return; }
        [ "$waited" -ge "$IDLE_WAIT" ] && { echo "busy $busy%"; return; }
        sleep 4
        waited=$((waited + 5))
    done
}

# One shape with every implementation, each in its own process, appended to runs.tsv with the
# machine state; the FMA peak is measured alongside (the highest reading is reported). Succeeds
# when the machine was idle before and after.
run_shape() { # threads index
    state=$(wait_idle)
    "$BIN" --peak --threads "$1" >>"$tmp/peak.tsv" || return 2
    {
        "$BIN" --index "$2" --threads "$1" --impl own --time "$SECONDS_PER" --verify
        "$BIN" --index "$2" --threads "$1" --impl own-bf16b --time "$SECONDS_PER"
        "$BIN" --index "$2" --threads "$1" --impl openblas --time "$SECONDS_PER"
        OPENBLAS_CORETYPE=SkylakeX "$BIN" --index "$2" --threads "$1" --impl openblas --time "$SECONDS_PER" \
            --verify | sed "s/\topenblas\t/\topenblas-skx\t/"
        if [ "$have_torch" = 1 ]; then
            # torch.mm calls the system BLAS (OpenBLAS here), whose threads torch.set_num_threads does not set
            "$BIN" --list | sed -n "$(($2 + 1))p" | OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 \
                /usr/bin/python3 benchmarks/kernels/torch_gemm.py "$1" "$SECONDS_PER"
        fi
    } >"$tmp/shape.tsv"
    [ "$state" = idle ] && [ "$(busy_percent)" -lt "$IDLE_BUSY_PERCENT" ] || state="busy"
    sed "s/^/$1\t/; s/\$/\t$state/" "$tmp/shape.tsv" >>"$tmp/runs.tsv"
    [ "$state" = idle ]
}

n_shapes=$("$BIN" --list | wc -l)
for threads in 1 2; do
    echo "gemm benchmark: $threads thread(s), $n_shapes shapes" >&2
    deadline=$(($(date +%s) + RETRY_MINUTES * 60))
    pending=$(seq 0 $((n_shapes - 1)))
    while [ -n "$pending" ]; do # shapes measured on a busy machine run again (the later lines win)
        again=""
        for i in $pending; do
            run_shape "$threads" "$i" || again="$again $i"
        done
        pending=$again
        [ -n "$pending" ] && [ "$(date +%s)" -ge "$deadline" ] && break
        [ -n "$pending" ] && echo "gemm benchmark: machine busy, again:$pending" >&2
    done
done
torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not installed")
blas_label="OpenBLAS (${OPENBLAS_CORETYPE:-auto})"
{
    echo "## GEMM (SGEMM): own kernel vs OpenBLAS vs PyTorch"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1) (family $(lscpu | sed -n 's/^CPU family: *//p' | head -n 1))," \
        "$(nproc) cores, L1d $(cat /sys/devices/system/cpu/cpu0/cache/index0/size 2>/dev/null)," \
        "L2 $(cat /sys/devices/system/cpu/cpu0/cache/index2/size 2>/dev/null)," \
        "L3 $(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2>/dev/null)"
    echo "- command: \`benchmarks/kernels/run_gemm.sh\` (GEMM_BENCH_SECONDS=$SECONDS_PER); PyTorch $torch_version"
    echo "- GFLOP/s = 2·M·N·K·batch / time, best of 3 rounds; C = A·B with alpha = 1, beta = 0, row-major;"
    echo "  op = A, B as stored (T = transposed); weights stored [out, in] as in PyTorch, so forward is X·Wᵀ (NT)."
    echo "- \"own bf16-B\": cc_sgemm_bf16b, B (weights) stored as bf16 and widened while packing."
    echo "- \"OpenBLAS SkylakeX\": same library with OPENBLAS_CORETYPE=SkylakeX (its AVX-512 kernels), own process."
    echo "- PyTorch: torch.mm / torch.bmm; it calls the system OpenBLAS (with this environment's OPENBLAS_CORETYPE)."
    echo "- \"best OpenBLAS\" = the faster of the two OpenBLAS runs; \"% peak\" = own / measured FMA peak."
    echo
    awk -F'\t' -v blas_label="$blas_label" '
        FNR == NR { if ($4 > peak[$2 "/" $3]) peak[$2 "/" $3] = $4; next }   # peak.tsv: peak isa threads gflops
        {
            t = $1; key = $2; impl = $9
            if (!(key in seen)) { seen[key] = 1; order[++n] = key; dims[key] = $3 "×" $4 "×" $5 (($8 > 1) ? " ×" $8 : ""); op[key] = ($6 ? "T" : "N") ($7 ? "T" : "N") }
            base = impl; sub(/^own-[a-z0-9]+-bf16b$/, "bf16", base); sub(/^own-[a-z0-9]+$/, "own", base)
            if (base == "own") isa = substr(impl, 5)
            g[t "/" key "/" base] = $10; e[t "/" key "/" base] = $11
            if ($12 != "idle") note[t "/" key] = $12; else delete note[t "/" key]
        }
        END {
            for (t = 1; t <= 2; t++) {
                pk = peak[isa "/" t]
                printf "### %d thread%s (FMA peak %s: %.0f GFLOP/s)\n\n", t, (t > 1 ? "s" : ""), isa, pk
                printf "| shape | M×N×K | op | own | own bf16-B | %s | OpenBLAS SkylakeX | PyTorch | own / best OpenBLAS | own %% peak |\n", blas_label
                printf "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
                worst = 1e9; logsum = 0; cnt = 0; bad = ""; n_busy = 0
                for (i = 1; i <= n; i++) {
                    k = order[i]; own = g[t "/" k "/own"] + 0
                    ob = g[t "/" k "/openblas"] + 0; skx = g[t "/" k "/openblas-skx"] + 0
                    best = ob > skx ? ob : skx
                    ratio = best > 0 ? own / best : 0
                    mark = ((t "/" k) in note) ? " (machine " note[t "/" k] ")" : ""
                    if (mark != "") n_busy++
                    printf "| %s%s | %s | %s | %.0f | %.0f | %.0f | %s | %s | %.2f | %.0f%% |\n", k, mark, dims[k], op[k], own,
                           g[t "/" k "/bf16"], ob, ((t "/" k "/openblas-skx") in g ? sprintf("%.0f", skx) : "n/a"),
                           ((t "/" k "/torch") in g ? sprintf("%.0f", g[t "/" k "/torch"]) : "n/a"), ratio, (pk > 0 ? 100 * own / pk : 0)
                    if (k ~ /^(vit|text)/ && ratio > 0) { if (ratio < worst) { worst = ratio; worst_k = k }; logsum += log(ratio); cnt++ }
                    if (e[t "/" k "/own"] + 0 > 1e-5) bad = bad " " k " (own vs OpenBLAS " e[t "/" k "/own"] ")"
                    if ((t "/" k "/openblas-skx") in e && e[t "/" k "/openblas-skx"] + 0 > 1e-5) bad = bad " " k " (SkylakeX vs own " e[t "/" k "/openblas-skx"] ")"
                }
                if (cnt > 0) printf "\nViT/text shapes, own / best OpenBLAS: geometric mean %.2f, lowest %.2f (%s).", exp(logsum / cnt), worst, worst_k
                printf " Results checked: %s", (bad == "" ? "own vs OpenBLAS and OpenBLAS SkylakeX vs own agree to <= 1e-5 (relative, norm-wise) on every shape." : "MISMATCH:" bad)
                printf "%s\n\n", (n_busy ? sprintf(" %d row(s) measured while other programs used the CPU (marked).", n_busy) : " Machine idle for every row.")
            }
        }' "$tmp/peak.tsv" "$tmp/runs.tsv"
} >"$OUT.tmp" || { rm -f "$OUT.tmp"; echo "gemm benchmark: making the table failed" >&2; exit 1; }
mv "$OUT.tmp" "$OUT" && echo "wrote $OUT" >&2
