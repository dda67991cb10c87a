#!/bin/sh
# benchmarks/train/bf16_curves.sh — the tiny CLIP trained from scratch on the synthetic shapes with
# `--precision bf16` and in f32, for SEEDS seeds each (one thread: each run is deterministic), and how
# far bf16's loss curve is from f32's compared with how far f32's own curves are from each other
# across seeds (the run-to-run spread of training from scratch). Writes benchmarks/out/train_bf16.md.
# Env: WORK (default build/bench-work), TINY_STEPS (default 200), SEEDS (default "1 2 3").
set -eu
cd "$(dirname "$0")/../.."
WORK=${WORK:-build/bench-work}
TINY_STEPS=${TINY_STEPS:-200}
SEEDS=${SEEDS:-1 2 3}
OUT=benchmarks/out/train_bf16.md
mkdir -p "$WORK/bf16cmp" benchmarks/out
[ -f "$WORK/synth/pairs.tsv" ] || build/clipc synth --out "$WORK/synth" --count 3000 --seed 7 --quiet
for seed in $SEEDS; do
    for p in f32 bf16; do
        run="$WORK/bf16cmp/$p.s$seed"
        rm -rf "$run" "$run.losses"
        echo "train: tiny CLIP, $p, seed $seed, $TINY_STEPS steps"
        build/clipc train --arch tiny --data "$WORK/synth/pairs.tsv" --out "$run" --steps "$TINY_STEPS" --batch 64 \
            --eval-every "$TINY_STEPS" --threads 1 --seed "$seed" --precision "$p" --quiet \
            --loss-log "$run.losses" > "$run.log" 2>&1
    done
done
/usr/bin/python3 - "$WORK/bf16cmp" "$OUT" "$TINY_STEPS" $SEEDS <<'PY'
import datetime, json, subprocess, sys
base, out, steps, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def losses(p): return [float(l.split()[1]) for l in open(p) if len(l.split()) == 2]
def smooth(x): return [sum(x[max(0, i - 19):i + 1]) / len(x[max(0, i - 19):i + 1]) for i in range(len(x))]
def diff(a, b):  # (largest, mean) relative difference of b's running mean from a's
    n = min(len(a), len(b)); sa, sb = smooth(a[:n]), smooth(b[:n])
    d = [abs(u - v) / abs(u) for u, v in zip(sa, sb)]
    return max(d), sum(d) / n
curve = {(p, s): losses(f"{base}/{p}.s{s}.losses") for p in ("f32", "bf16") for s in seeds}
final = {(p, s): [json.loads(l) for l in open(f"{base}/{p}.s{s}/train_log.jsonl")][-1] for p in ("f32", "bf16") for s in seeds}
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
def r1(rec): return f"{rec['val']['text_to_image']['R@1']:.3f} / {rec['val']['image_to_text']['R@1']:.3f}"
lines = ["## bf16 training against f32 (tiny CLIP from scratch)", "",
         f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {cpu}, 1 thread; `benchmarks/train/bf16_curves.sh`. "
         f"Synthetic shapes (3000 pairs, seed 7), {steps} steps, batch 64; `--precision bf16`: bf16 products, "
         "f32 weights, AdamW and loss logits.", "",
         "| seed | f32 val loss | bf16 val loss | f32 R@1 t→i / i→t | bf16 R@1 t→i / i→t | bf16 vs f32 curve: largest / mean rel. diff |",
         "|---|---|---|---|---|---|"]
for s in seeds:
    w, m = diff(curve[("f32", s)], curve[("bf16", s)])
    lines.append(f"| {s} | {final[('f32', s)]['val_loss']:.3f} | {final[('bf16', s)]['val_loss']:.3f} | "
                 f"{r1(final[('f32', s)])} | {r1(final[('bf16', s)])} | {w:.1%} / {m:.1%} |")
spread = [diff(curve[("f32", a)], curve[("f32", b)]) for i, a in enumerate(seeds) for b in seeds[i + 1:]]
def mean_curve(p):
    cs = [curve[(p, s)] for s in seeds]; n = min(map(len, cs))
    return [sum(c[i] for c in cs) / len(cs) for i in range(n)]
mw, mm = diff(mean_curve("f32"), mean_curve("bf16"))
fl = lambda p: sum(final[(p, s)]["val_loss"] for s in seeds) / len(seeds)
lines += ["", "Curves are running means over 20 steps of the per-step training loss (`--loss-log`).", ""]
if spread:
    lines.append(f"Spread of f32 itself between seeds (the noise floor of one curve): largest {min(x[0] for x in spread):.1%}–"
                 f"{max(x[0] for x in spread):.1%}, mean {min(x[1] for x in spread):.1%}–{max(x[1] for x in spread):.1%}.")
lines += [f"Mean curve over the {len(seeds)} seeds, bf16 against f32: largest {mw:.1%}, mean {mm:.1%}; "
          f"mean final val loss f32 {fl('f32'):.3f}, bf16 {fl('bf16'):.3f}.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
