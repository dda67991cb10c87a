#!/bin/sh
# run_lowp.sh — GFLOP/s (GOP/s for int8) of the bf16 and int8 products on every ViT-B/32 and text
# GEMM shape, next to the float kernel and the machine's measured instruction peaks (FMA, vdpbf16ps,
# vpdpbusd), 1 and 2 threads. Inference shapes use pre-packed weights (as --precision does), training
# shapes the bf16 product that packs B per call (train --precision bf16). Writes
# benchmarks/out/kernels_lowp.md. Needs a CPU with AVX512_BF16 / AVX512_VNNI for those columns.
cd "$(dirname "$0")/../.." || exit 2
BENCH=build/bench/kernels/bench_gemm
[ -x "$BENCH" ] || make -s bench-bins
OUT=benchmarks/out/kernels_lowp.md
work=$(mktemp -d)
for t in 1 2; do
    $BENCH --peak --threads $t >"$work/peak$t.tsv"
    for impl in packed packed-bf16 packed-int8 own bf16; do
        $BENCH --threads $t --impl $impl --time 0.25 >"$work/$impl.$t.tsv" 2>/dev/null || true
    done
done
/usr/bin/python3 - "$work" "$OUT" <<'PY'
import sys, os, subprocess, datetime
work, out = sys.argv[1], sys.argv[2]
def read(name):
    rows = {}
    path = os.path.join(work, name)
    if os.path.exists(path):
        for line in open(path):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 9: rows[f[0]] = float(f[8])
    return rows
peaks = {}
for t in (1, 2):
    for line in open(os.path.join(work, f"peak{t}.tsv")):
        f = line.split()
        peaks[(f[1], t)] = float(f[3])
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
lines = ["## Low-precision GEMM: bf16 (vdpbf16ps) and int8 (vpdpbusd) on the ViT-B/32 and text shapes", "",
         f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {cpu}; `benchmarks/kernels/run_lowp.sh`. Instruction peaks "
         "measured in registers (`bench_gemm --peak`, 24 independent chains): " +
         "; ".join(f"{t} thread{'s' if t > 1 else ''}: FMA {peaks.get(('avx512', t), 0):.0f}, bf16 {peaks.get(('avx512-bf16', t), 0):.0f}, "
                   f"int8 {peaks.get(('avx512-vnni-int8', t), 0):.0f} GFLOP/s" for t in (1, 2)) + ".", ""]
for t in (1, 2):
    f32, f32p, bfp, i8p, bf = (read(f"{impl}.{t}.tsv") for impl in ("own", "packed", "packed-bf16", "packed-int8", "bf16"))
    bp, ip = peaks.get(("avx512-bf16", t), float("nan")), peaks.get(("avx512-vnni-int8", t), float("nan"))
    lines += [f"### {t} thread{'s' if t > 1 else ''}", "",
              "| shape | f32 | f32 pre-packed | bf16 pre-packed (inference) | int8 pre-packed (inference) | bf16, B packed per call (training) |",
              "|---|---|---|---|---|---|"]
    nan = float("nan")
    for name in f32p:
        b, i, c = bfp.get(name, nan), i8p.get(name, nan), bf.get(name, nan)
        lines.append(f"| {name} | {f32.get(name, nan):.0f} | {f32p[name]:.0f} | {b:.0f} ({100 * b / bp:.0f}%) | "
                     f"{i:.0f} ({100 * i / ip:.0f}%) | {c:.0f} ({100 * c / bp:.0f}%) |")
    lines += ["", "(percentages: of the instruction peak above)", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
rm -rf "$work"
