#!/bin/sh
# train_mpi.sh — data-parallel `mpirun -np N clipc train` (docs/DISTRIBUTED.md) against one process:
#   1. 20 steps of the tiny CLIP at global batch 32: N = 1, 2, 4 give the same per-step losses
#      (relative 1e-4) and the same final weights (1e-3 of each tensor's largest value, at least 1e-5);
#      N = 2 with --accum-freq 2 (micro-batches inside each rank's slice) too;
#   2. resuming the N = 4 run's step-10 checkpoint with N = 2 continues the same trajectory;
#   3. a batch that the ranks (or --accum-freq) cannot split evenly, and a data file no rank can read, stop with an error
#      naming the cause (and the rank), without hanging.
# Skipped (passes) when mpirun is not installed.
set -eu
if ! command -v mpirun > /dev/null 2>&1; then
    echo "skipped: no mpirun"
    exit 0
fi
mpi="mpirun --oversubscribe"
[ "$(id -u)" = 0 ] && mpi="$mpi --allow-run-as-root"
seed=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
"$CLIPC" synth --out "$TMPDIR/data" --count 200 --seed "$seed" --quiet > /dev/null
common="--arch tiny --merges 300 --threads 1 --workers 1 --quiet --data $TMPDIR/data/pairs.tsv --steps 20 --batch 32
    --lr 5e-4 --warmup 3 --seed $seed"

# 1. N = 1 (no mpirun: a single process, as always), 2, 4
"$CLIPC" train $common --out "$TMPDIR/n1" --loss-log "$TMPDIR/n1.txt" > /dev/null
$mpi -np 2 "$CLIPC" train $common --out "$TMPDIR/n2" --loss-log "$TMPDIR/n2.txt" > "$TMPDIR/n2.log" 2>&1 ||
    { cat "$TMPDIR/n2.log"; exit 1; }
$mpi -np 4 "$CLIPC" train $common --out "$TMPDIR/n4" --loss-log "$TMPDIR/n4.txt" --save-every 10 > "$TMPDIR/n4.log" 2>&1 ||
    { cat "$TMPDIR/n4.log"; exit 1; }
# one writer: a single train_log line per evaluation (start, end)
test "$(wc -l < "$TMPDIR/n4/train_log.jsonl")" = 2

cat > "$TMPDIR/same.py" <<'PY'
import json, struct, sys
import numpy as np

def losses(path):
    return {int(s): float(v) for s, v in (line.split() for line in open(path))}

def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        start, end = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=np.float32).astype(np.float64)
    return out

kind, a, b = sys.argv[1:4]
if kind == "losses":
    la, lb = losses(a), losses(b)
    assert sorted(la) == list(range(1, 21)) and sorted(lb) == sorted(la), (a, sorted(la), b, sorted(lb))
    worst = max(abs(la[s] - lb[s]) / abs(la[s]) for s in la)
    assert worst <= 1e-4, f"{a} vs {b}: per-step losses differ by {worst:.2e} relative"
else:
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    # k_proj biases get no gradient (softmax ignores a shift): they stay ~1e-8, hence the floor
    worst, name = max((np.abs(ta[k] - tb[k]).max() / max(np.abs(ta[k]).max(), 1e-2), k) for k in ta)
    assert worst <= 1e-3, f"{a} vs {b}: {name} differs by {worst:.2e} of its largest value"
print(f"{kind}: {worst:.1e}")
PY
same() { /usr/bin/python3 "$TMPDIR/same.py" "$@"; }
for n in 2 4; do
    same losses "$TMPDIR/n1.txt" "$TMPDIR/n$n.txt"
    same weights "$TMPDIR/n1/model/model.safetensors" "$TMPDIR/n$n/model/model.safetensors"
done

# with --accum-freq 2 inside each rank's slice as well
$mpi -np 2 "$CLIPC" train $common --out "$TMPDIR/n2k2" --loss-log "$TMPDIR/n2k2.txt" --accum-freq 2 > "$TMPDIR/n2k2.log" 2>&1 ||
    { cat "$TMPDIR/n2k2.log"; exit 1; }
same losses "$TMPDIR/n1.txt" "$TMPDIR/n2k2.txt"
same weights "$TMPDIR/n1/model/model.safetensors" "$TMPDIR/n2k2/model/model.safetensors"

# 2. the N = 4 run from its step-10 checkpoint, continued with N = 2
cp -r "$TMPDIR/n4" "$TMPDIR/re"
rm "$TMPDIR/re/checkpoints/step_0000020.safetensors"
echo step_0000010.safetensors > "$TMPDIR/re/checkpoints/latest"
cp "$TMPDIR/n4.txt" "$TMPDIR/re.txt"
$mpi -np 2 "$CLIPC" train $common --out "$TMPDIR/re" --loss-log "$TMPDIR/re.txt" --resume > "$TMPDIR/re.log" 2>&1 ||
    { cat "$TMPDIR/re.log"; exit 1; }
same losses "$TMPDIR/n1.txt" "$TMPDIR/re.txt"
same weights "$TMPDIR/n1/model/model.safetensors" "$TMPDIR/re/model/model.safetensors"

# 3. errors end the job
if $mpi -np 3 "$CLIPC" train $common --out "$TMPDIR/three" > "$TMPDIR/three.log" 2>&1; then echo "batch 32 on 3 ranks ran"; exit 1; fi
grep -q "not a multiple of the 3 ranks" "$TMPDIR/three.log" || { cat "$TMPDIR/three.log"; exit 1; }
if $mpi -np 2 "$CLIPC" train $common --accum-freq 32 --out "$TMPDIR/k32" > "$TMPDIR/k32.log" 2>&1; then echo "accum-freq 32 of 16 ran"; exit 1; fi
grep -q "slice of --batch (32 / 2 ranks) is not a multiple of --accum-freq 32" "$TMPDIR/k32.log" || { cat "$TMPDIR/k32.log"; exit 1; }
if $mpi -np 2 "$CLIPC" train $common --data "$TMPDIR/nope.tsv" --out "$TMPDIR/nope" > "$TMPDIR/nope.log" 2>&1; then
    echo "a missing data file did not fail"; exit 1
fi
grep -q "rank [01]: train: .*nope.tsv" "$TMPDIR/nope.log" || { cat "$TMPDIR/nope.log"; exit 1; }
echo "N = 1, 2, 4 agree; resume with another N continues"
