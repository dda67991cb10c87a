#!/bin/sh
# python_pkg.sh — the Python package (python/clipc over build/libclipc.so, ctypes) against the CLI on a
# random-weight model: encode_image (paths, HxWx3 uint8 arrays, mixed), encode_pixels and encode_text equal
# `clipc embed`, tokenize equals `clipc tokenize`, Index search equals `clipc index search` on the same
# files (built by either side), add/remove/save/load, errors raise ClipcError with the C message, the
# GIL is released during C calls (a second thread feeds a FIFO the first one is decoding), and
# `pip install --no-index --no-build-isolation` into a fresh venv works.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
py=/usr/bin/python3
test -e "$CLIPC_SRC/build/libclipc.so"
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
$py "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 > /dev/null
model="$TMPDIR/model_f32"
ln -s "$vocab" "$model/bpe_simple_vocab_16e6.txt.gz"
$py - "$TMPDIR" "$seed" <<'PY'
import sys, numpy as np
from PIL import Image
out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
specs = [(64, 48, "png"), (37, 91, "jpg"), (200, 120, "png"), (20, 13, "jpg"), (50, 50, "png")]
with open(f"{out}/images.txt", "w") as f, open(f"{out}/png.txt", "w") as g:
    for i, (w, h, ext) in enumerate(specs):
        base = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        path = f"{out}/img{i}.{ext}"
        Image.fromarray(base).resize((w, h), Image.BILINEAR).save(path)
        f.write(path + "\n")
        if ext == "png":
            g.write(path + "\n")
with open(f"{out}/captions.txt", "w", encoding="utf-8") as f:
    f.write("a photo of a dog\nTwo RED circles above a blue square!\n&amp; caf\u00e9 na\u00efve 123\n")
    f.write(" ".join(["a very long caption"] * 40) + "\n")
PY
"$CLIPC" embed --model "$model" --images "$TMPDIR/images.txt" --out "$TMPDIR/img.npy" --quiet > /dev/null
"$CLIPC" embed --model "$model" --images "$TMPDIR/png.txt" --out "$TMPDIR/png.npy" --quiet > /dev/null
"$CLIPC" embed --model "$model" --texts "$TMPDIR/captions.txt" --out "$TMPDIR/txt.npy" --quiet > /dev/null 2>&1
size=$($py -c "import json, sys; print(json.load(open(sys.argv[1]))['vision_config']['image_size'])" "$model/config.json")
i=0
while read -r image; do
    "$CLIPC" preprocess --image "$image" --size "$size" --out "$TMPDIR/px$i.npy"
    i=$((i + 1))
done < "$TMPDIR/png.txt"
"$CLIPC" tokenize --model "$model" --special --context 77 < "$TMPDIR/captions.txt" > "$TMPDIR/ids.txt"
"$CLIPC" index build --type HNSW32 --vectors "$TMPDIR/img.npy" --out "$TMPDIR/cli.idx" > /dev/null 2>&1
"$CLIPC" index search --index "$TMPDIR/cli.idx" --queries "$TMPDIR/txt.npy" --k 3 --out "$TMPDIR/cli_I.npy" \
    --scores "$TMPDIR/cli_S.npy" > /dev/null 2>&1

# ---- the package from the source tree (finds build/libclipc.so by itself)
PYTHONPATH="$CLIPC_SRC/python" $py - "$TMPDIR" "$model" <<'PY'
import sys, numpy as np
from PIL import Image
import clipc
d, model_dir = sys.argv[1], sys.argv[2]
assert clipc.library_path.endswith("build/libclipc.so"), clipc.library_path
lines = lambda p: [l.rstrip("\n") for l in open(p, encoding="utf-8")]
m = clipc.Model(model_dir)
paths, pngs, captions = lines(f"{d}/images.txt"), lines(f"{d}/png.txt"), lines(f"{d}/captions.txt")
img, png, txt = np.load(f"{d}/img.npy"), np.load(f"{d}/png.npy"), np.load(f"{d}/txt.npy")
# embeddings: the same code as the CLI, so the same numbers
assert m.dim == img.shape[1] and m.context_length == 77
ours = m.encode_image(paths)
assert ours.dtype == np.float32 and ours.shape == img.shape and np.array_equal(ours, img), np.abs(ours - img).max()
arrays = [np.asarray(Image.open(p).convert("RGB")) for p in pngs]
assert np.array_equal(m.encode_image(arrays), png), np.abs(m.encode_image(arrays) - png).max()
pixels = np.stack([np.load(f"{d}/px{i}.npy") for i in range(3)])  # clipc preprocess of the PNGs
assert np.array_equal(m.encode_pixels(pixels), png) and m.image_size == pixels.shape[-1]
mixed = m.encode_image([pngs[0], arrays[1], pngs[2]])  # order kept across paths and arrays
assert np.abs(mixed - png[:3]).max() < 1e-6
assert np.abs(m.encode_image(arrays[1]) - png[1]).max() < 1e-6  # a single array -> one row
same_size = np.stack([arrays[1], arrays[1][::-1]])  # a [2, H, W, 3] batch is two images
assert np.abs(m.encode_image(same_size) - m.encode_image(list(same_size))).max() == 0
assert np.array_equal(m.encode_text(captions), txt)
assert np.abs(m.encode_text(captions[0]) - txt[0]).max() < 1e-6
# tokenize: clip.tokenize's layout, the CLI's ids
ids, eot = m.tokenize(captions, return_eot=True)
assert ids.shape == (4, 77) and ids.dtype == np.int32
for row, e, line in zip(ids, eot, lines(f"{d}/ids.txt")):
    want = [int(t) for t in line.split()]
    assert list(row[:len(want)]) == want and not row[len(want):].any() and e == len(want) - 1
# an index file built by the CLI: same search results
ix = clipc.Index.load(f"{d}/cli.idx")
assert len(ix) == len(paths) and ix.desc.startswith("HNSW32") and ix.metric == "ip"
scores, nn = ix.search(txt, 3)
assert np.array_equal(nn, np.load(f"{d}/cli_I.npy")) and np.array_equal(scores, np.load(f"{d}/cli_S.npy"))
# built here, searched by the CLI (saved), and exact for Flat
for desc in ("Flat", "HNSW32", "IVF2,Flat"):
    ix = clipc.Index.build(img, desc)
    s, i = ix.search(txt, 3)
    exact = np.argsort(-(txt @ img.T), axis=1, kind="stable")[:, :3]
    if desc == "Flat":
        assert np.array_equal(i, exact), (i, exact)
        assert np.abs(s - np.take_along_axis(txt @ img.T, exact, 1)).max() < 1e-5
    ix.save(f"{d}/py_{desc.replace(',', '_')}.idx")
    np.save(f"{d}/py_{desc.replace(',', '_')}_I.npy", i)
    np.save(f"{d}/py_{desc.replace(',', '_')}_S.npy", s)
# add with ids, remove, reload
ix = clipc.Index.build(img[:3], "Flat", ids=[10, 11, 12])
ix.add(img[3:], ids=[20, 21])
assert len(ix) == 5 and ix.remove([11, 99]) == 1 and len(ix) == 4
_, i = ix.search(img, 4)
assert 11 not in i and i[0, 0] == 10 and i[2, 0] == 12 and i[3, 0] == 20 and i[4, 0] == 21
ix.save(f"{d}/rm.idx")
again = clipc.Index.load(f"{d}/rm.idx")
assert np.array_equal(again.search(img, 4)[1], i)
l2 = clipc.Index.build(img, "Flat", metric="l2")
s, i = l2.search(img[:2], 1)
assert list(i[:, 0]) == [0, 1] and np.abs(s).max() < 1e-5
# errors carry the C library's message
def raises(fn, exc, text):
    try:
        fn()
    except exc as e:
        assert text in str(e), (text, str(e))
        return
    raise AssertionError(f"no {exc.__name__} for {text}")
raises(lambda: clipc.Model(f"{d}/nowhere"), clipc.ClipcError, "nowhere/config.json")
raises(lambda: m.encode_image([f"{d}/missing.png"]), clipc.ClipcError, "missing.png")
raises(lambda: clipc.Index.create("Bogus7", 4), clipc.ClipcError, "Bogus7")
raises(lambda: clipc.Index.load(f"{d}/img.npy"), clipc.ClipcError, "img.npy")
raises(lambda: clipc.Index.build(img, "Flat").search(txt, 9), clipc.ClipcError, "9")
raises(lambda: m.encode_image([np.zeros((4, 4), np.uint8)]), ValueError, "HxWx3 uint8")
raises(lambda: m.encode_image([np.zeros((4, 4, 3), np.float32)]), ValueError, "HxWx3 uint8")
raises(lambda: ix.add(np.zeros((1, 3), np.float32)), ValueError, "expected an array")
print("python package ok")
PY
# the CLI searches the files the package wrote and finds the same
for name in Flat HNSW32 IVF2_Flat; do
    "$CLIPC" index search --index "$TMPDIR/py_$name.idx" --queries "$TMPDIR/txt.npy" --k 3 --out "$TMPDIR/c_I.npy" \
        --scores "$TMPDIR/c_S.npy" > /dev/null 2>&1
    $py -c "import numpy as np, sys; d, n = sys.argv[1:]; assert np.array_equal(np.load(f'{d}/c_I.npy'), np.load(f'{d}/py_{n}_I.npy')); assert np.array_equal(np.load(f'{d}/c_S.npy'), np.load(f'{d}/py_{n}_S.npy'))" "$TMPDIR" "$name"
done

# ---- the GIL is released during C calls: thread A decodes a FIFO (blocking in C until data comes);
# the main thread, running Python meanwhile, writes the PNG into it. Holding the GIL would deadlock
# (the timeout turns that into a failure). Two models in two threads give the sequential results.
mkfifo "$TMPDIR/fifo.png"
PYTHONPATH="$CLIPC_SRC/python" timeout 120 $py - "$TMPDIR" "$model" <<'PY'
import sys, threading, numpy as np
import clipc
d, model_dir = sys.argv[1], sys.argv[2]
m = clipc.Model(model_dir)
png = open(f"{d}/img0.png", "rb").read()
result = {}
reader = threading.Thread(target=lambda: result.setdefault("v", m.encode_image([f"{d}/fifo.png"])))
reader.start()
with open(f"{d}/fifo.png", "wb") as f:  # Python code running while the reader is inside libclipc
    f.write(png)
reader.join()
assert np.array_equal(result["v"], m.encode_image([f"{d}/img0.png"]))
models = [clipc.Model(model_dir) for _ in range(2)]
captions = [f"caption number {i}" for i in range(40)]
want = models[0].encode_text(captions)
got = [None, None]
def work(k):
    for _ in range(3):
        got[k] = models[k].encode_text(captions)
threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
for t in threads: t.start()
for t in threads: t.join()
assert all(np.array_equal(g, want) for g in got)
print("threads ok")
PY

# ---- pip install into a fresh venv (offline; Debian's setuptools, hence --no-build-isolation), the
# library installed next to the package; imported from elsewhere
cp -r "$CLIPC_SRC/python" "$TMPDIR/pysrc"
rm -rf "$TMPDIR/pysrc/build" "$TMPDIR/pysrc"/*.egg-info
cp "$CLIPC_SRC/build/libclipc.so" "$TMPDIR/pysrc/clipc/libclipc.so"
$py -m venv --system-site-packages "$TMPDIR/venv"
"$TMPDIR/venv/bin/pip" install --quiet --no-index --no-build-isolation "$TMPDIR/pysrc" > "$TMPDIR/pip.log" 2>&1 || {
    cat "$TMPDIR/pip.log"; exit 1; }
rm -rf "$TMPDIR/pysrc"
(cd / && "$TMPDIR/venv/bin/python" - "$TMPDIR" "$model" <<'PY'
import sys, numpy as np
import clipc
d, model_dir = sys.argv[1], sys.argv[2]
assert clipc.__file__.startswith(f"{d}/venv/"), clipc.__file__
assert clipc.library_path.startswith(f"{d}/venv/"), clipc.library_path
m = clipc.Model(model_dir)
assert np.array_equal(m.encode_text(["a photo of a dog"]), np.load(f"{d}/txt.npy")[:1])
print("venv ok")
PY
)
# CLIPC_LIB picks the library explicitly; a wrong one is an ImportError naming it
if (cd / && CLIPC_LIB="$TMPDIR/none.so" "$TMPDIR/venv/bin/python" -c "import clipc" 2> "$TMPDIR/err"); then exit 1; fi
grep -q "none.so" "$TMPDIR/err"
echo "python_pkg ok"
