#!/bin/sh
# train_lora.sh — `clipc train --lora` end to end on synthetic data:
#   1. the start-up message reports the trainable parameters and the optimizer state; OUT/lora holds
#      the pairs under PEFT's names with the shapes of the weights they update; base weights are the
#      same in every checkpoint (frozen);
#   2. --resume (LoRA settings taken from the checkpoint) gives exactly the losses and model of the
#      uninterrupted run; 3. clipc export merges the pairs: the same model as OUT/model, with exactly
#      the base model's tensor names and shapes (a plain CLIPModel; loaded by transformers when it is
#      installed), its weights W + (lora_alpha/r)·B·A computed from OUT/lora's files alone; 4. --lock-image: pairs on the text tower only; 5. bad options fail clearly.
set -eu
seed=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
"$CLIPC" synth --out "$TMPDIR/small" --count 120 --seed "$seed" --quiet > /dev/null
run() { "$CLIPC" train --arch tiny --merges 300 --threads 2 --data "$TMPDIR/small/pairs.tsv" --batch 16 --seed 3 "$@"; }

# 1. a run of 6 steps, checkpoints at 3 and 6
run --steps 6 --save-every 3 --lora 4 --lora-alpha 8 --lora-targets qkv,out,mlp --out "$TMPDIR/a" \
    --loss-log "$TMPDIR/a.txt" > "$TMPDIR/a.log"
grep -q "LoRA rank 4, alpha 8 (scale 2) on q_proj,k_proj,v_proj,out_proj,fc1,fc2 of the text and vision towers: 48 pairs" "$TMPDIR/a.log" ||
    { cat "$TMPDIR/a.log"; exit 1; }
grep -Eq "48 pairs, 110592 trainable parameters \([0-9.]+% of [0-9]+\), [0-9]+ frozen; optimizer state 0.88 MB \(AdamW moments\) \+ 0.44 MB \(gradients\)" "$TMPDIR/a.log" ||
    { cat "$TMPDIR/a.log"; exit 1; }
test -f "$TMPDIR/a/lora/adapter_model.safetensors" && test -f "$TMPDIR/a/lora/adapter_config.json"

# 2. resume from step 3 of a copy
cp -r "$TMPDIR/a" "$TMPDIR/b"
rm "$TMPDIR/b/checkpoints/step_0000006.safetensors"
echo step_0000003.safetensors > "$TMPDIR/b/checkpoints/latest"
head -n 3 "$TMPDIR/a.txt" > "$TMPDIR/b.txt"
run --steps 6 --save-every 3 --out "$TMPDIR/b" --loss-log "$TMPDIR/b.txt" --resume > "$TMPDIR/b.log"
cmp "$TMPDIR/a.txt" "$TMPDIR/b.txt" || { echo "resumed losses differ:"; paste "$TMPDIR/a.txt" "$TMPDIR/b.txt"; exit 1; }
cmp "$TMPDIR/a/model/model.safetensors" "$TMPDIR/b/model/model.safetensors"
cmp "$TMPDIR/a/lora/adapter_model.safetensors" "$TMPDIR/b/lora/adapter_model.safetensors"
if run --steps 6 --out "$TMPDIR/b" --resume --lora 8 > /dev/null 2> "$TMPDIR/err"; then echo "resume with another rank worked"; exit 1; fi
grep -q "was trained with --lora 4 --lora-alpha 8" "$TMPDIR/err"

# 3. export merges
"$CLIPC" export --checkpoint "$TMPDIR/a/checkpoints/step_0000006.safetensors" --out "$TMPDIR/exported" --quiet > /dev/null
cmp "$TMPDIR/exported/model.safetensors" "$TMPDIR/a/model/model.safetensors"

/usr/bin/python3 - "$TMPDIR" <<'PY'
import json, struct, sys
d = sys.argv[1]

def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        return h, 8 + n, path

def tensor_bytes(h, name):
    hdr, base, path = h
    b, e = hdr[name]["data_offsets"]
    with open(path, "rb") as f:
        f.seek(base + b)
        return f.read(e - b)

ck3, ck6 = header(f"{d}/a/checkpoints/step_0000003.safetensors"), header(f"{d}/a/checkpoints/step_0000006.safetensors")
base = {k: v["shape"] for k, v in ck6[0].items()
        if k != "__metadata__" and not k.startswith("optimizer.") and not k.startswith("base_model.")}
lora = {k: v["shape"] for k, v in header(f"{d}/a/lora/adapter_model.safetensors")[0].items() if k != "__metadata__"}
assert len(lora) == 2 * 48, len(lora)
for k, shape in lora.items():
    assert k.startswith("base_model.model.") and (k.endswith(".lora_A.weight") or k.endswith(".lora_B.weight")), k
    weight = k[len("base_model.model."):-len(".lora_A.weight")] + ".weight"
    out_f, in_f = base[weight]
    assert shape == ([4, in_f] if ".lora_A." in k else [out_f, 4]), (k, shape, base[weight])
    assert ck6[0][k]["shape"] == shape and f"optimizer.m.{k}" in ck6[0], k  # in the checkpoint, with moments
assert not any(k.startswith("optimizer.") and not k[12:].startswith("base_model.") for k in ck6[0]), "a base weight has moments"
for k in base:  # frozen
    assert tensor_bytes(ck3, k) == tensor_bytes(ck6, k), f"{k} changed between steps 3 and 6"
meta = json.loads(ck6[0]["__metadata__"]["lora"])
assert meta == {"r": 4, "alpha": 8, "targets": "q_proj,k_proj,v_proj,out_proj,fc1,fc2", "text": 1, "vision": 1}, meta
cfg = json.load(open(f"{d}/a/lora/adapter_config.json"))
assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["lora_alpha"] == 8, cfg
assert cfg["target_modules"] == ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"], cfg
exp = header(f"{d}/exported/model.safetensors")
exported = {k: v["shape"] for k, v in exp[0].items() if k != "__metadata__"}
assert exported == base, "the exported tensors are not the base model's names and shapes"
# PEFT's semantics from the adapter files alone: exported W = base W + (lora_alpha / r) * B @ A
import numpy as np
ad = header(f"{d}/a/lora/adapter_model.safetensors")
f32 = lambda h, k, shape: np.frombuffer(tensor_bytes(h, k), "<f4").reshape(shape).astype(np.float64)
scale, worst = cfg["lora_alpha"] / cfg["r"], 0.0
for k in lora:
    if ".lora_A." not in k:
        continue
    weight = k[len("base_model.model."):-len(".lora_A.weight")] + ".weight"
    A, B = f32(ad, k, lora[k]), f32(ad, k.replace(".lora_A.", ".lora_B."), lora[k.replace(".lora_A.", ".lora_B.")])
    assert np.abs(B).max() > 0, f"{k}: B never trained"
    want = f32(ck6, weight, base[weight]) + scale * B @ A
    got = f32(exp, weight, base[weight])
    worst = max(worst, np.abs(got - want).max() / np.abs(want).max())
assert worst < 1e-6, f"merged weights differ from W + (alpha/r) B A by {worst:.3g}"
print(f"merged weights = base + (alpha/r)·B·A from OUT/lora within {worst:.2g}")
try:
    import transformers
except ImportError:
    print("transformers not installed: exported names and shapes checked against the base model only")
else:
    m = transformers.CLIPModel.from_pretrained(f"{d}/exported")
    print("transformers loads the merged model:", type(m).__name__)
PY

# 4. --lock-image: the text tower only; PEFT's target_modules becomes a regular expression
run --steps 1 --lora 2 --lock-image --out "$TMPDIR/text_only" > "$TMPDIR/t.log"
grep -q "on q_proj,v_proj of the text tower: 8 pairs" "$TMPDIR/t.log" || { cat "$TMPDIR/t.log"; exit 1; }
/usr/bin/python3 - "$TMPDIR/text_only/lora" <<'PY'
import json, re, struct, sys
d = sys.argv[1]
with open(f"{d}/adapter_model.safetensors", "rb") as f:
    names = [k for k in json.loads(f.read(struct.unpack("<Q", f.read(8))[0])) if k != "__metadata__"]
assert len(names) == 16 and all(k.startswith("base_model.model.text_model.encoder.layers.") for k in names), names
pattern = json.load(open(f"{d}/adapter_config.json"))["target_modules"]
assert re.fullmatch(pattern, "text_model.encoder.layers.3.self_attn.v_proj"), pattern
assert not re.fullmatch(pattern, "vision_model.encoder.layers.3.self_attn.v_proj"), pattern
assert not re.fullmatch(pattern, "text_model.encoder.layers.3.self_attn.k_proj"), pattern
PY

# 5. bad options: exit status 2 (or 1 once the model is known), and a message naming the problem
bad() {
    expect=$1
    shift
    status=0
    run --steps 1 --out "$TMPDIR/bad" "$@" > /dev/null 2> "$TMPDIR/err" || status=$?
    test "$status" != 0 || { echo "clipc train $* succeeded"; exit 1; }
    grep -q -- "$expect" "$TMPDIR/err" || { echo "clipc train $*: expected '$expect' in:"; cat "$TMPDIR/err"; exit 1; }
}
bad "the rank must be at least 1 (got 0)" --lora 0
bad "unknown target 'attn'" --lora 2 --lora-targets q,attn
bad "larger than the text tower's q_proj \[192, 192\]" --lora 193
bad "need --lora R" --lora-alpha 4
bad "leaves nothing to train" --lora 2 --lock-image --lock-text
bad "give one" --lora 2 --adapter
echo "LoRA: resume, export merge, names and shapes, one tower, bad options ok"
