#!/bin/sh
# classify_cli.sh — `clipc classify` against an independent computation: the probabilities must equal
# softmax(exp(logit_scale) * cos) with each label's feature the renormalised mean of its normalised
# template features, computed in numpy from `clipc embed` outputs (whose parity with PyTorch is
# tests/cli/embed_parity.sh) and the logit_scale read from the weights file. Also the default template
# set, --pseudo-label with --min-prob, and bad input.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
PY=/usr/bin/python3
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
cd "$TMPDIR"
fail() {
    echo "FAIL: $*"
    exit 1
}
$PY "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 --n-images 1 --n-texts 1 >/dev/null
model="$TMPDIR/model_f32"
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$model/"
$CLIPC synth --out syn --count 5 --size 40 --seed "$seed" --quiet >/dev/null
ls "$PWD"/syn/images/*.png >images.txt
printf 'red circle\nblue square\ngreen triangle\nyellow star\n' >labels.txt
printf '# comment lines are skipped\na photo of a {}.\na blurry drawing of the {}\n{}, seen from far away\n' >templates.txt

$CLIPC classify --model "$model" --labels labels.txt --templates templates.txt --images images.txt --top 4 --json >out.json
$CLIPC classify --model "$model" --labels labels.txt --templates templates.txt --images images.txt --top 2 >out.tsv
# the reference: every prompt and image embedded by clipc embed, the rest in numpy
$PY - >prompts.txt <<'EOF'
labels = [l.strip() for l in open("labels.txt") if l.strip()]
templates = [t.rstrip("\n") for t in open("templates.txt") if t.strip() and not t.startswith("#")]
for l in labels:
    for t in templates:
        print(t.replace("{}", l))
EOF
$CLIPC embed --model "$model" --texts prompts.txt --out prompts.npy --quiet >/dev/null
$CLIPC embed --model "$model" --images images.txt --out images.npy --quiet >/dev/null
$PY - "$model" "$CLIPC_SRC/tests/reference" <<'EOF' || fail "probabilities differ from the reference"
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import clip_ref
scale = float(np.exp(clip_ref.read_safetensors(sys.argv[1] + "/model.safetensors")["logit_scale"]))
labels = [l.strip() for l in open("labels.txt") if l.strip()]
paths = [l.strip() for l in open("images.txt")]
t = np.load("prompts.npy").astype(np.float64).reshape(len(labels), 3, -1)
cls = t.mean(1)
cls /= np.linalg.norm(cls, axis=1, keepdims=True)
img = np.load("images.npy").astype(np.float64)
logits = scale * img @ cls.T
p = np.exp(logits - logits.max(1, keepdims=True))
p /= p.sum(1, keepdims=True)
doc = json.load(open("out.json"))
assert doc["labels"] == 4 and doc["templates"] == 3 and len(doc["results"]) == len(paths), doc
for i, r in enumerate(doc["results"]):
    assert r["image"] == paths[i]
    order = np.argsort(-p[i], kind="stable")
    got = [(e["label"], e["prob"]) for e in r["top"]]
    assert [g[0] for g in got] == [labels[j] for j in order], (got, p[i])
    assert all(abs(g[1] - p[i][j]) < 2e-5 for g, j in zip(got, order)), (got, p[i])
    assert abs(sum(g[1] for g in got) - 1) < 1e-4
rows = [l.rstrip("\n").split("\t") for l in open("out.tsv")]
assert len(rows) == len(paths) and all(len(r) == 5 for r in rows), rows
for i, r in enumerate(rows):
    assert r[0] == paths[i] and r[1] == doc["results"][i]["top"][0]["label"], r
    assert abs(float(r[2]) - doc["results"][i]["top"][0]["prob"]) < 1e-4
EOF

# default templates, a folder as input, pseudo-labels (all, then none above an impossible threshold)
$CLIPC classify --model "$model" --labels labels.txt --images syn/images --pseudo-label pseudo.tsv >default.tsv 2>err.txt
[ "$(wc -l <default.tsv)" -eq 5 ] || fail "default templates: $(cat default.tsv)"
grep -q "wrote 5 pseudo-label" err.txt || fail "$(cat err.txt)"
$PY - <<'EOF' || fail "pseudo-label TSV"
rows = [l.rstrip("\n").split("\t") for l in open("pseudo.tsv")]
assert rows[0] == ["image", "caption", "label", "prob"], rows[0]
top = {r[0]: r[1] for r in (l.rstrip("\n").split("\t") for l in open("default.tsv"))}
for img, caption, label, prob in rows[1:]:
    assert top[img] == label and caption == f"a photo of a {label}." and 0 < float(prob) <= 1, (img, caption, label)
assert len(rows) == 6
EOF
$CLIPC classify --model "$model" --labels labels.txt --images syn/images --pseudo-label none.tsv --min-prob 0.999 >/dev/null 2>err.txt
grep -q "wrote 0 pseudo-label" err.txt || fail "min-prob: $(cat err.txt)"
[ "$(wc -l <none.tsv)" -eq 1 ] || fail "min-prob rows"
$CLIPC classify --model "$model" --labels labels.txt --image syn/images/000001.png syn/images/000002.png --top 1 >two.tsv
[ "$(wc -l <two.tsv)" -eq 2 ] || fail "--image list"

# ---- bad input
printf 'no placeholder here\n' >bad_templates.txt
if $CLIPC classify --model "$model" --labels labels.txt --templates bad_templates.txt --images images.txt 2>err.txt; then fail "template without {}"; fi
grep -q "has no {}" err.txt || fail "$(cat err.txt)"
: >empty.txt
if $CLIPC classify --model "$model" --labels empty.txt --images images.txt 2>err.txt; then fail "no labels"; fi
grep -q "expected 1 to" err.txt || fail "$(cat err.txt)"
echo "junk" >syn/images/junk.png
$CLIPC classify --model "$model" --labels labels.txt --images syn/images >out2.tsv 2>err.txt || fail "unreadable image stops the run"
grep -q "junk.png" err.txt || fail "unreadable image not named: $(cat err.txt)"
[ "$(wc -l <out2.tsv)" -eq 5 ] || fail "unreadable image in the output"
echo "classify CLI ok"
