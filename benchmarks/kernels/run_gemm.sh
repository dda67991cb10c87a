#!/bin/sh
# run_gemm.sh — SGEMM benchmark: clipc's own kernel (float B and bf16 B) against OpenBLAS (as this
# environment configures it, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}; and once more with
# OPENBLAS_CORETYPE=SkylakeX, its AVX-512 path, in a separate process since the variable is read
# when the library loads, results checked against the own kernel) and PyTorch torch.mm, at 1 and
# 2 threads, plus the FMA peak. Each implementation runs in its own process. Writes
# benchmarks/out/kernels_gemm.md.
# Usage: benchmarks/kernels/run_gemm.sh   (GEMM_BENCH_SECONDS=s per shape and implementation, default 0.45)
cd "$(dirname "$0")/../.." || exit 2
BIN=build/bench/kernels/bench_gemm
SECONDS_PER=${GEMM_BENCH_SECONDS:-0.45}
OUT=benchmarks/out/kernels_gemm.md
[ -x "$BIN" ] || make --no-print-directory "$BIN" >/dev/null || exit 1
mkdir -p benchmarks/out
tmp=$(mktemp -d) || exit 1
[ -n "$GEMM_BENCH_KEEP" ] || trap 'rm -rf "$tmp"' EXIT
blas_label="OpenBLAS (${OPENBLAS_CORETYPE:-auto})"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for threads in 1 2; do
    echo "gemm benchmark: $threads thread(s)" >&2
    "$BIN" --peak --threads "$threads" >>"$tmp/peak.tsv" || exit 1
    "$BIN" --threads "$threads" --impl own --time "$SECONDS_PER" --verify | sed "s/^/$threads\t/" >>"$tmp/runs.tsv" || exit 1
    "$BIN" --threads "$threads" --impl own-bf16b --time "$SECONDS_PER" | sed "s/^/$threads\t/" >>"$tmp/runs.tsv" || exit 1
    "$BIN" --threads "$threads" --impl openblas --time "$SECONDS_PER" | sed "s/^/$threads\t/" >>"$tmp/runs.tsv" || exit 1
    OPENBLAS_CORETYPE=SkylakeX "$BIN" --threads "$threads" --impl openblas --time "$SECONDS_PER" --verify |
        sed "s/\topenblas\t/\topenblas-skx\t/; s/^/$threads\t/" >>"$tmp/runs.tsv" ||
        echo "gemm benchmark: OpenBLAS with OPENBLAS_CORETYPE=SkylakeX failed" >&2
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        # torch.mm calls the system BLAS (OpenBLAS here), whose thread count torch.set_num_threads does not set
        "$BIN" --list | OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads \
            /usr/bin/python3 benchmarks/kernels/torch_gemm.py "$threads" "$SECONDS_PER" |
            sed "s/^/$threads\t/" >>"$tmp/runs.tsv"
    fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not installed")
{
    echo "## GEMM (SGEMM): own kernel vs OpenBLAS vs PyTorch"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores," \
        "L1d $(cat /sys/devices/system/cpu/cpu0/cache/index0/size 2>/dev/null)," \
        "L2 $(cat /sys/devices/system/cpu/cpu0/cache/index2/size 2>/dev/null)," \
        "L3 $(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2>/dev/null); load average before/after: $load_before / $load_after"
    echo "- command: \`benchmarks/kernels/run_gemm.sh\` (GEMM_BENCH_SECONDS=$SECONDS_PER); PyTorch $torch_version"
    echo "- GFLOP/s = 2·M·N·K·batch / time, best of 3 rounds; C = A·B with alpha = 1, beta = 0, row-major;"
    echo "  ta/tb = A/B transposed (weights stored [out, in] as in PyTorch: forward is X·Wᵀ)."
    echo "- \"own bf16-B\": cc_sgemm_bf16b, B (weights) stored as bf16 and widened while packing."
    echo "- \"OpenBLAS SkylakeX\": same library with OPENBLAS_CORETYPE=SkylakeX (AVX-512 kernels), in its own process."
    echo "- \"best OpenBLAS\" = the faster of the two OpenBLAS runs; \"% peak\" = own / measured FMA peak."
    echo
    awk -F'\t' -v blas_label="$blas_label" '
        FNR == NR { peak[$2 "/" $3] = $4; next }   # peak.tsv: peak isa threads gflops
        {
            t = $1; key = $2; impl = $9
            if (!(key in seen)) { seen[key] = 1; order[++n] = key; dims[key] = $3 "×" $4 "×" $5 (($8 > 1) ? " ×" $8 : ""); op[key] = ($6 ? "T" : "N") ($7 ? "T" : "N") }
            base = impl; sub(/^own-[a-z0-9]+-bf16b$/, "bf16", base); sub(/^own-[a-z0-9]+$/, "own", base)
            if (base == "own") isa = substr(impl, 5)
            g[t "/" key "/" base] = $10; e[t "/" key "/" base] = $11
        }
        END {
            for (t = 1; t <= 2; t++) {
                pk = peak[isa "/" t]
                printf "### %d thread%s (FMA peak %s: %.0f GFLOP/s)\n\n", t, (t > 1 ? "s" : ""), isa, pk
                printf "| shape | M×N×K | op | own | own bf16-B | %s | OpenBLAS SkylakeX | PyTorch | own / best OpenBLAS | own %% peak |\n", blas_label
                printf "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
                worst = 1e9; logsum = 0; cnt = 0; bad = ""
                for (i = 1; i <= n; i++) {
                    k = order[i]; own = g[t "/" k "/own"] + 0
                    ob = g[t "/" k "/openblas"] + 0; skx = g[t "/" k "/openblas-skx"] + 0
                    best = ob > skx ? ob : skx
                    ratio = best > 0 ? own / best : 0
                    printf "| %s | %s | %s | %.0f | %.0f | %.0f | %s | %s | %.2f | %.0f%% |\n", k, dims[k], op[k], own,
                           g[t "/" k "/bf16"], ob, (t "/" k "/openblas-skx") in g ? sprintf("%.0f", skx) : "n/a",
                           (t "/" k "/torch") in g ? sprintf("%.0f", g[t "/" k "/torch"]) : "n/a", ratio, (pk > 0 ? 100 * own / pk : 0)
                    if (k ~ /^(vit|text)/ && ratio > 0) { if (ratio < worst) { worst = ratio; worst_k = k }; logsum += log(ratio); cnt++ }
                    if (e[t "/" k "/own"] + 0 > 1e-5) bad = bad " " k " (own vs OpenBLAS " e[t "/" k "/own"] ")"
                    if ((t "/" k "/openblas-skx") in e && e[t "/" k "/openblas-skx"] + 0 > 1e-5) bad = bad " " k " (SkylakeX vs own " e[t "/" k "/openblas-skx"] ")"
                }
                printf "\nViT/text shapes, own / best OpenBLAS: geometric mean %.2f, lowest %.2f (%s).", exp(logsum / cnt), worst, worst_k
                printf " Results checked: %s\n\n", (bad == "" ? "own vs OpenBLAS and OpenBLAS SkylakeX vs own agree to <= 1e-5 (relative, norm-wise) on every shape." : "MISMATCH:" bad)
            }
        }' "$tmp/peak.tsv" "$tmp/runs.tsv"
} >"$OUT.tmp" || { rm -f "$OUT.tmp"; echo "gemm benchmark: making the table failed" >&2; exit 1; }
mv "$OUT.tmp" "$OUT" && echo "wrote $OUT" >&2
