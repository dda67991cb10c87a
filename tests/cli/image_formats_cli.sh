#!/bin/sh
# image_formats_cli.sh — WebP / GIF / BMP / TIFF files through the commands that embed, and --style:
#   - `clipc embed --style openai|hf` of palette, transparency, 1-bit, RGBA and 16-bit files (written by
#     PIL) equals the PyTorch reference model fed PIL + openai's transform / HF's processor order
#     (cosine >= 0.99999), and the two styles differ on those files;
#   - the format comes from the content (a GIF named .jpg reads as a GIF); clipc_set_style in the C API;
#   - `index build --images DIR` picks up .webp/.gif/.bmp/.tif, records --style; search defaults to the
#     index's style (an indexed image finds itself at score ~1), `index add --style` of the other style
#     is refused; the server shows every format and uses the index's style for uploads of any type.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
PY=/usr/bin/python3
ref="$CLIPC_SRC/tests/reference"
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
cd "$TMPDIR"
fail() {
    echo "FAIL: $*"
    exit 1
}
$PY "$ref/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 --n-images 1 --n-texts 1 >/dev/null
model="$TMPDIR/model_f32"
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$model/"
mkdir -p imgs
# images in modes where the two styles differ, and their reference pixels in both styles
$PY - "$TMPDIR" "$seed" "$ref" <<'PY'
import json, sys
import numpy as np
from PIL import Image
out, seed, ref = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, ref)
import data_image_ref as base
import image_formats_ref as fmt
rng = np.random.default_rng(seed)
size = json.load(open(f"{out}/model_f32/config.json"))["vision_config"]["image_size"]
w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
fmt.random_palette_image(rng, w, h, 200).save(f"{out}/imgs/p.gif", transparency=3)
fmt.random_rgba(rng, w + 3, h).save(f"{out}/imgs/rgba.webp", lossless=True)
Image.fromarray(base.smooth_noise(rng, h, w, 3).astype(np.uint8)).convert("1").save(f"{out}/imgs/bit1.bmp")
fmt.random_rgba(rng, w, h + 5).save(f"{out}/imgs/rgba.tif")
Image.fromarray(base.smooth_noise(rng, h, w, 1, 600)[:, :, 0].astype(np.uint16), "I;16").save(f"{out}/imgs/i16.tiff")
buf = open(f"{out}/imgs/p.gif", "rb").read()
open(f"{out}/misnamed.jpg", "wb").write(buf)  # a GIF under a JPEG name
paths = [f"{out}/imgs/{n}" for n in ("p.gif", "rgba.webp", "bit1.bmp", "rgba.tif", "i16.tiff")]
open(f"{out}/images.txt", "w").write("\n".join(paths) + "\n")
for style in ("openai", "hf"):
    u8 = base.openai_u8 if style == "openai" else base.hf_u8
    flt = base.openai_float if style == "openai" else base.hf_float
    np.save(f"{out}/pixels_{style}.npy", np.stack([flt(u8(fmt.as_clipc_reads(Image.open(p)), size, size)) for p in paths]).astype(np.float32))
np.save(f"{out}/ids.npy", np.zeros((1, 77), np.int64))
np.save(f"{out}/eot.npy", np.zeros(1, np.int64))
PY
for style in openai hf; do
    $PY "$ref/clip_ref.py" embed "$model" "pixels_$style.npy" ids.npy eot.npy "ref_$style" >/dev/null
    $CLIPC embed --model "$model" --images images.txt --style "$style" --out "ours_$style.npy" --quiet >/dev/null
done
$PY - <<'PY' || fail "embeddings differ from the reference"
import numpy as np
def cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
for style in ("openai", "hf"):
    ours, want = np.load(f"ours_{style}.npy"), np.load(f"ref_{style}_image_embeds.npy")
    assert ours.shape == want.shape, (ours.shape, want.shape)
    c = cos(ours, want)
    assert c.min() >= 0.99999, (style, c)
# the styles are not the same pipeline on these files
diff = 1 - cos(np.load("ours_openai.npy"), np.load("ours_hf.npy"))
assert (diff > 1e-6).sum() >= 3, diff
print("styles ok", diff)
PY
# the content decides the format, not the name
$CLIPC embed --model "$model" --image misnamed.jpg --out mis.npy --quiet >/dev/null
$PY -c "import numpy as np; a=np.load('mis.npy'); b=np.load('ours_openai.npy')[:1]; assert np.abs(a-b).max() < 1e-6" ||
    fail "a GIF named .jpg embeds differently"
if $CLIPC embed --model "$model" --image imgs/p.gif --style pil --out x.npy 2>err.txt; then fail "--style pil accepted"; fi
grep -q "openai" err.txt || fail "bad --style not explained: $(cat err.txt)"

# ---- the C API: clipc_set_style, and an image file of a new format
cat >capi.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "include/clipc.h"
int main(int argc, char **argv) {
    clipc_model *m = clipc_open(argv[1], NULL);
    if (!m || clipc_set_style(m, "pil") == 0 || clipc_set_style(m, argv[2]) != 0) return 1;
    float *v = malloc((size_t)clipc_dim(m) * sizeof(float));
    if (clipc_embed_image_file(m, argv[3], v) != 0) {
        fprintf(stderr, "%s\n", clipc_last_error());
        return 1;
    }
    for (int i = 0; i < clipc_dim(m); i++) printf("%.9g\n", v[i]);
    clipc_close(m);
    return 0;
}
EOF
libs=$(sed -n 's/^Libs: .*-lclipc //p' "$CLIPC_SRC/scripts/clipc.pc.in")
# shellcheck disable=SC2086
cc -I"$CLIPC_SRC" capi.c "$(dirname "$CLIPC")/libclipc.a" $libs -o capi || fail "the C API example does not link"
for style in openai hf; do
    ./capi "$model" "$style" imgs/p.gif >"capi_$style.txt" || fail "C API with style $style"
    $PY -c "import numpy as np; a=np.loadtxt('capi_$style.txt'); b=np.load('ours_$style.npy')[0]; assert np.abs(a-b).max() < 1e-6, np.abs(a-b).max()" ||
        fail "clipc_set_style($style) embeds differently from clipc embed --style $style"
done

# ---- a folder of the new formats; the index remembers --style hf and search uses it
out=$($CLIPC index build --model "$model" --images imgs --style hf --type Flat --out hf.idx --quiet)
echo "$out" | grep -q "^indexed 5 images" || fail "build: $out"
$CLIPC index info hf.idx | grep -q "preprocess_style = hf" || fail "style not recorded: $($CLIPC index info hf.idx)"
probe="$(pwd -P)/imgs/p.gif"
line=$($CLIPC search --index hf.idx --image imgs/p.gif --k 1)
echo "$line" | awk -F'\t' -v want="$probe" '$2 >= 0.99999 && $3 == want { ok = 1 } END { exit !ok }' ||
    fail "search with the index's style: $line"
# the same probe with the other style is another vector (its score drops below the self-match)
other=$($CLIPC search --index hf.idx --image imgs/p.gif --k 1 --style openai | cut -f2)
$PY -c "import sys; a, b = float('$other'), float('$(echo "$line" | cut -f2)'); sys.exit(0 if a < b else 1)" ||
    fail "--style openai on an hf index changed nothing ($other)"
if $CLIPC index add --index hf.idx --images imgs --style openai 2>err.txt >/dev/null; then fail "mixed styles accepted"; fi
grep -q "built with --style hf" err.txt || fail "mixed styles: $(cat err.txt)"

# ---- the server: uses the index's style, shows every format (non-JPEG/PNG items as PNG of the decoded
# pixels, thumbnails from the same decoder), takes uploads of any image type
: >serve.out
$CLIPC serve --index hf.idx --port 0 --workers 2 --quiet >serve.out 2>serve.err &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 200); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' serve.out)
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { echo "server did not start:"; cat serve.out serve.err; exit 1; }
$PY - "$port" "$(pwd -P)" <<'EOF' || fail "server"
import http.client, io, json, sys
import numpy as np
from PIL import Image
port, root = int(sys.argv[1]), sys.argv[2]
def req(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.getheader("Content-Type"), r.read()
st, ct, data = req("GET", "/api/search?q=x&k=10")
items = {r["path"]: r["id"] for r in json.loads(data)["results"]}
assert len(items) == 5, items
for name in ("rgba.webp", "p.gif", "bit1.bmp", "rgba.tif", "i16.tiff"):
    path = f"{root}/imgs/{name}"
    st, ct, data = req("GET", "/api/item/%d" % items[path])
    assert st == 200 and ct == "image/png", (name, st, ct)
    got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    want = np.asarray(Image.open(path).convert("RGB"))
    assert got.shape == want.shape and (got == want).all(), (name, "served pixels differ from PIL's")
    st, ct, data = req("GET", "/api/item/%d?thumb=1" % items[path])
    assert st == 200 and ct == "image/jpeg" and Image.open(io.BytesIO(data)).size == Image.open(path).size, (name, st)
    raw = open(path, "rb").read()
    st, ct, data = req("POST", "/api/search?k=1", raw, {"Content-Type": "image/" + name.split(".")[1]})
    top = json.loads(data)["results"][0] if st == 200 else None
    assert top and top["path"] == path and top["score"] >= 0.99999, (name, st, data[:200])
print("serve ok")
EOF
kill -TERM $pid
status=0
wait $pid || status=$?
trap - EXIT
[ $status -eq 0 ] || { echo "server exit status $status"; cat serve.err; exit 1; }
echo "image formats ok"
