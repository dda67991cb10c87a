#!/bin/sh
# train_features.sh — issue 18's training options end to end on synthetic data, tiny model:
#   1. --loss siglip: logit_bias (init -10) in train_log.jsonl, in checkpoints and in the exported
#      model (which `clipc eval` loads again); --resume continues the SigLIP run exactly (the loss is
#      taken from the checkpoint);
#   2. zero-shot: --zeroshot-data/--templates during training (train_log.jsonl, curves.png) and in
#      `clipc eval`, whose top-1/top-5 equal those computed from `clipc classify`'s rankings;
#   3. several captions per image: one caption per image per epoch (steps per epoch = images / batch),
#      deterministic under --resume across an epoch boundary; --every-caption keeps every caption.
set -eu
seed=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
PY=/usr/bin/python3
cd "$TMPDIR"
fail() {
    echo "FAIL: $*"
    exit 1
}
"$CLIPC" synth --out data --count 48 --seed "$seed" --quiet > /dev/null
# a micro architecture (32-pixel images, one layer of width 32 per tower): seconds per run
cat > micro.json <<'JSON'
{"projection_dim": 16,
 "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "max_position_embeddings": 32},
 "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                   "image_size": 32, "patch_size": 8}}
JSON
common="--arch micro.json --merges 200 --threads 2 --quiet"
# zero-shot labels: the background colour named at the end of each caption
$PY - <<'PY'
rows = [l.rstrip("\n").split("\t") for l in open("data/pairs.tsv")][1:]
with open("zeroshot.tsv", "w") as f:  # paths relative to this file's directory
    for image, caption in rows[:24]:
        f.write(f"data/{image}\t{caption.split(' on a ')[-1].split()[0]}\n")
labels = []
for l in open("zeroshot.tsv"):
    label = l.rstrip("\n").split("\t")[1]
    if label not in labels:
        labels.append(label)
open("labels.txt", "w").write("\n".join(labels) + "\n")
open("templates.txt", "w").write("# two templates\na {} background.\na picture on {}.\n")
PY

# 1 + 2. SigLIP with zero-shot evaluation; a resume from the step-3 checkpoint reproduces steps 4..6
run() { "$CLIPC" train $common --data data/pairs.tsv --steps 6 --batch 8 --save-every 3 --eval-every 3 --seed 5 \
    --zeroshot-data zeroshot.tsv --templates templates.txt "$@"; }
resume_from() { # OUT_FROM STEP OUT_TO LOSS_LOG_FROM LOSS_LOG_TO: a fresh output directory holding one checkpoint
    mkdir -p "$3/checkpoints"
    cp "$1/checkpoints/step_000000$2.safetensors" "$3/checkpoints/"
    echo "step_000000$2.safetensors" > "$3/checkpoints/latest"
    head -n "$2" "$4" > "$5"
}
run --loss siglip --out sig --loss-log sig.txt > /dev/null
resume_from sig 3 sig2 sig.txt sig2.txt
run --out sig2 --loss-log sig2.txt --resume > /dev/null
cmp sig.txt sig2.txt || { paste sig.txt sig2.txt; fail "resumed SigLIP losses differ"; }
test -f sig/curves.png
$PY - "$CLIPC_SRC/tests/reference" <<'PY' || fail "SigLIP log / checkpoint / export"
import json, math, sys
sys.path.insert(0, sys.argv[1])
import clip_ref
log = [json.loads(l) for l in open("sig/train_log.jsonl")]
assert log[0]["when"] == "start" and abs(log[0]["logit_bias"] + 10) < 1e-4, log[0]
assert abs(log[0]["logit_scale"] - math.log(10)) < 1e-4, log[0]
for entry in log:
    z = entry["zeroshot"]
    assert 0 <= z["top1"] <= z["top5"] <= 1 and z["n_images"] == 24 and z["templates"] == 2, z
assert "CLIP_benchmark" in log[0]["val"]["protocol"]
losses = [float(l.split()[1]) for l in open("sig.txt")]
assert all(0.5 < x < 50 for x in losses), losses
ckpt = clip_ref.read_safetensors("sig/checkpoints/step_0000006.safetensors")
assert "logit_bias" in ckpt and "optimizer.m.logit_bias" in ckpt, sorted(ckpt)[:5]
model = clip_ref.read_safetensors("sig/model/model.safetensors")
assert abs(float(model["logit_bias"]) - float(ckpt["logit_bias"])) == 0 and float(model["logit_bias"]) != -10
PY
"$CLIPC" eval --model sig/model --data sig/val.tsv --images-root . --zeroshot-data zeroshot.tsv \
    --templates templates.txt --quiet > eval.json
# classify on the same images and labels: its ranking gives top-1/top-5 (ties are improbable with float features)
cut -f1 zeroshot.tsv > zs_images.txt
"$CLIPC" classify --model sig/model --labels labels.txt --templates templates.txt --images zs_images.txt --top 5 \
    --json > classify.json
$PY - <<'PY' || fail "eval --zeroshot-data differs from classify"
import json
doc = json.load(open("eval.json"))
assert "text_to_image" in doc and "CLIP_benchmark" in doc["protocol"], doc
z = doc["zeroshot"]
truth = [l.rstrip("\n").split("\t")[1] for l in open("zeroshot.tsv")]
results = json.load(open("classify.json"))["results"]
assert len(results) == len(truth) == z["n_images"], (len(results), z)
top = [[e["label"] for e in r["top"]] for r in results]
top1 = sum(t[0] == y for t, y in zip(top, truth)) / len(truth)
top5 = sum(y in t[:5] for t, y in zip(top, truth)) / len(truth)
assert abs(z["top1"] - top1) <= 5e-5 and abs(z["top5"] - top5) <= 5e-5, (z, top1, top5)  # JSON has 4 decimals
print(f"zero-shot top-1 {top1:.3f} top-5 {top5:.3f} (eval and classify agree)")
PY

# 3. three captions per image (24 images): one caption per image per epoch = 3 steps of 8; a resume
#    at step 2 crosses the epoch boundary at step 3
$PY - <<'PY'
rows = [l.rstrip("\n").split("\t") for l in open("data/pairs.tsv")][1:]
with open("data/multi.tsv", "w") as f:
    f.write("image\tcaption\n")
    for i, (image, _) in enumerate(rows[:24]):
        for k in range(3):
            f.write(f"{image}\t{rows[(i + 7 * k) % len(rows)][1]}\n")
PY
multi() { "$CLIPC" train --arch micro.json --merges 200 --threads 2 --data data/multi.tsv --val-data data/pairs.tsv \
    --steps 5 --batch 8 --save-every 2 --seed 9 "$@"; }
multi --out m1 --loss-log m1.txt > m1.log 2>&1
grep -q "one caption per image per epoch" m1.log || fail "$(cat m1.log)"
grep -q "(3 per epoch)" m1.log || fail "steps per epoch: $(cat m1.log)"
resume_from m1 2 m2 m1.txt m2.txt
multi --out m2 --loss-log m2.txt --resume > /dev/null 2>&1
cmp m1.txt m2.txt || { paste m1.txt m2.txt; fail "resumed losses differ with sampled captions"; }
multi --out m3 --every-caption --steps 1 > m3.log 2>&1
grep -q "(9 per epoch)" m3.log || fail "--every-caption: $(cat m3.log)"

# bad input
printf 'images/000000.png\n' > bad_zs.tsv
if "$CLIPC" eval --model sig/model --zeroshot-data bad_zs.tsv 2> err.txt; then fail "bad zero-shot file accepted"; fi
grep -q "bad_zs.tsv:1" err.txt || fail "$(cat err.txt)"
if "$CLIPC" train $common --data data/pairs.tsv --out bad --loss cosine 2> err.txt; then fail "--loss cosine accepted"; fi
grep -q "clip or siglip" err.txt || fail "$(cat err.txt)"
if run --out sig2 --loss clip --resume 2> err.txt; then fail "resuming SigLIP with --loss clip accepted"; fi
grep -q "trained with --loss siglip" err.txt || fail "$(cat err.txt)"
echo "train features ok"
