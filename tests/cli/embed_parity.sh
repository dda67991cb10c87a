#!/bin/sh
# embed_parity.sh — `clipc embed` end to end (image files and caption text in, .npy out) against the
# PyTorch reference pipeline (PIL preprocessing, Python tokenizer, reference model): cosine >= 0.99999.
# Also: an unreadable image is an error naming it, --skip-bad keeps going and writes the kept rows,
# an empty caption file is an error; a sharded checkpoint (index.json + shards) gives identical embeddings.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
ref="$CLIPC_SRC/tests/reference/clip_ref.py"
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
/usr/bin/python3 "$ref" make "$TMPDIR" "$seed" --dtypes f32 > /dev/null
model="$TMPDIR/model_f32"
ln -s "$vocab" "$model/bpe_simple_vocab_16e6.txt.gz"
# images of several sizes and kinds (PNG, JPEG, grayscale, RGBA), smooth random content
/usr/bin/python3 - "$TMPDIR" "$seed" <<'PY'
import sys, numpy as np
from PIL import Image
out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
specs = [(64, 48, "RGB", "png"), (37, 91, "RGB", "jpg"), (200, 120, "L", "png"), (50, 50, "RGBA", "png"), (20, 13, "RGB", "jpg")]
with open(f"{out}/images.txt", "w") as f:
    for i, (w, h, mode, ext) in enumerate(specs):
        base = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 4), dtype=np.uint8)
        img = Image.fromarray(base, "RGBA").resize((w, h), Image.BILINEAR).convert(mode)
        path = f"{out}/img{i}.{ext}"
        img.save(path, quality=90) if ext == "jpg" else img.save(path)
        f.write(path + "\n")
with open(f"{out}/captions.txt", "w", encoding="utf-8") as f:
    f.write("a photo of a dog\nTwo RED circles above a blue square!\n&amp; caf\u00e9 na\u00efve 123\n")
    f.write(" ".join(["a very long caption"] * 40) + "\n")
PY
"$CLIPC" embed --model "$model" --images "$TMPDIR/images.txt" --out "$TMPDIR/img.npy" --quiet
"$CLIPC" embed --model "$model" --texts "$TMPDIR/captions.txt" --out "$TMPDIR/txt.npy" --quiet 2> "$TMPDIR/warn"
grep -q "truncated" "$TMPDIR/warn"
/usr/bin/python3 "$ref" embed-files "$model" "$vocab" "$TMPDIR/images.txt" "$TMPDIR/captions.txt" "$TMPDIR/ref"
/usr/bin/python3 - "$TMPDIR" <<'PY'
import sys, numpy as np
d = sys.argv[1]
for kind in ("img", "txt"):
    ours = np.load(f"{d}/{kind}.npy")
    ref = np.load(f"{d}/ref_{'image' if kind == 'img' else 'text'}_embeds.npy")
    assert ours.shape == ref.shape, (kind, ours.shape, ref.shape)
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.99999, (kind, cos)
    assert abs(np.linalg.norm(ours, axis=1) - 1).max() < 1e-5
print("parity ok")
PY
# --precision bf16 / int8 (where the CPU has AVX512_BF16 / AVX512_VNNI; else a warning and f32):
# within cosine 0.999 / 0.99 of f32, and not f32's bits
for precision in bf16 int8; do
    "$CLIPC" embed --model "$model" --images "$TMPDIR/images.txt" --out "$TMPDIR/img_$precision.npy" --precision $precision --quiet 2> "$TMPDIR/warn_$precision"
    "$CLIPC" embed --model "$model" --texts "$TMPDIR/captions.txt" --out "$TMPDIR/txt_$precision.npy" --precision $precision --quiet 2>> "$TMPDIR/warn_$precision"
    /usr/bin/python3 - "$TMPDIR" $precision <<'PY'
import sys, numpy as np
d, precision = sys.argv[1], sys.argv[2]
fallback = "running in f32" in open(f"{d}/warn_{precision}").read()
for kind in ("img", "txt"):
    a, b = np.load(f"{d}/{kind}_{precision}.npy"), np.load(f"{d}/{kind}.npy")
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= (0.999 if precision == "bf16" else 0.99), (precision, kind, cos)
    assert fallback or np.abs(a - b).max() > 0, f"{precision} gave the f32 bits: its kernel did not run"
PY
done
if "$CLIPC" embed --model "$model" --text "x" --out "$TMPDIR/p.npy" --precision f64 2> "$TMPDIR/err"; then exit 1; fi
grep -q "precision must be f32, bf16 or int8" "$TMPDIR/err"
# --text on the command line gives the same rows as the file
"$CLIPC" embed --model "$model" --text "a photo of a dog" "Two RED circles above a blue square!" --out "$TMPDIR/txt2.npy" --quiet
/usr/bin/python3 -c "import numpy as np; a=np.load('$TMPDIR/txt.npy')[:2]; b=np.load('$TMPDIR/txt2.npy'); assert np.abs(a-b).max() < 1e-6"
# an unreadable image fails and names the file; --skip-bad skips it and lists the kept rows
echo "not an image" > "$TMPDIR/bad.png"
{ head -n 2 "$TMPDIR/images.txt"; echo "$TMPDIR/bad.png"; tail -n 1 "$TMPDIR/images.txt"; } > "$TMPDIR/with_bad.txt"
if "$CLIPC" embed --model "$model" --images "$TMPDIR/with_bad.txt" --out "$TMPDIR/x.npy" --quiet 2> "$TMPDIR/err"; then exit 1; fi
grep -q "bad.png" "$TMPDIR/err"
test ! -e "$TMPDIR/x.npy"
"$CLIPC" embed --model "$model" --images "$TMPDIR/with_bad.txt" --out "$TMPDIR/x.npy" --skip-bad --quiet 2> "$TMPDIR/err"
grep -q "skipped 1" "$TMPDIR/err"
/usr/bin/python3 -c "import numpy as np; k=np.load('$TMPDIR/x.kept.npy'); assert list(k)==[0,1,3], k; assert np.load('$TMPDIR/x.npy').shape[0]==3"
# an empty caption file is an error
: > "$TMPDIR/empty.txt"
if "$CLIPC" embed --model "$model" --texts "$TMPDIR/empty.txt" --out "$TMPDIR/e.npy" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "no captions" "$TMPDIR/err"
# window mode for long captions runs and gives unit vectors
"$CLIPC" embed --model "$model" --texts "$TMPDIR/captions.txt" --long-text window --window-stride 40 --out "$TMPDIR/w.npy" --quiet
/usr/bin/python3 -c "import numpy as np; w=np.load('$TMPDIR/w.npy'); t=np.load('$TMPDIR/txt.npy'); assert abs(np.linalg.norm(w,axis=1)-1).max()<1e-5; assert np.abs(w[:3]-t[:3]).max()<1e-5; assert np.abs(w[3]-t[3]).max()>1e-3"
# the default stride (context - 2) works without --window-stride
"$CLIPC" embed --model "$model" --texts "$TMPDIR/captions.txt" --long-text window --out "$TMPDIR/w2.npy" --quiet
# a sharded checkpoint (model.safetensors.index.json + 2 shards, as Hugging Face writes large models)
# loads to the same weights: identical embeddings
mkdir "$TMPDIR/sharded"
for f in "$model"/*; do case "$f" in *.safetensors) ;; *) ln -s "$f" "$TMPDIR/sharded/";; esac; done
/usr/bin/python3 - "$model/model.safetensors" "$TMPDIR/sharded" <<'PY'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
blob = open(src, "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
data = blob[8 + n:]
names = sorted(k for k in header if k != "__metadata__")
shards = [names[0::2], names[1::2]]
weight_map = {}
for i, part in enumerate(shards):
    file = f"model-{i + 1:05d}-of-00002.safetensors"
    h, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in part:
        b, e = header[name]["data_offsets"]
        h[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"], "data_offsets": [offset, offset + e - b]}
        chunks.append(data[b:e]); offset += e - b; weight_map[name] = file
    hj = json.dumps(h).encode(); hj += b" " * (-len(hj) % 8)
    open(f"{out}/{file}", "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(chunks))
json.dump({"metadata": {"total_size": len(data)}, "weight_map": weight_map}, open(f"{out}/model.safetensors.index.json", "w"))
PY
"$CLIPC" embed --model "$TMPDIR/sharded" --images "$TMPDIR/images.txt" --out "$TMPDIR/img_sharded.npy" --quiet
cmp "$TMPDIR/img.npy" "$TMPDIR/img_sharded.npy"
"$CLIPC" info --model "$TMPDIR/sharded" | grep -q "vision tower"
