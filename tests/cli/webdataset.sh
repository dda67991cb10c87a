#!/bin/sh
# webdataset.sh — WebDataset tar shards as training data (data/webdataset.h):
#   1. shards written by Python's tarfile (PIL images, .txt and .json captions, a GNU long name, a
#      sample without image) train the tiny CLIP from the brace pattern '{0..1}'; the skipped sample
#      is reported once; eval reads the same pattern and the run's val.tsv of shard references;
#   2. `clipc shards` round trip: Python's tarfile reads clipc's shards back with the same members
#      (image bytes unchanged, captions as .txt), and clipc reads them back with the same pairs;
#      the same pairs from pairs.tsv and from its shards train to identical losses;
#   3. bad input: a corrupt shard and a missing shard are errors naming the file.
set -eu
common="--arch tiny --merges 200 --threads 2 --quiet"
mkdir -p "$TMPDIR/wds"
/usr/bin/python3 - "$TMPDIR/wds" <<'PY'
import io, json, random, sys, tarfile
from PIL import Image, ImageDraw
out = sys.argv[1]
rng = random.Random(5)
colors = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
shapes = ["circle", "square"]
def image(color, shape, fmt):
    img = Image.new("RGB", (48, 48), (rng.randrange(200, 256),) * 3)
    d = ImageDraw.Draw(img)
    x, y = rng.randrange(4, 16), rng.randrange(4, 16)
    box = (x, y, x + 28, y + 28)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colors[color])
    b = io.BytesIO()
    img.save(b, fmt)
    return b.getvalue()
def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
k = 0
for s in range(2):
    with tarfile.open(f"{out}/{s}.tar", "w", format=tarfile.GNU_FORMAT if s == 0 else tarfile.PAX_FORMAT) as t:
        for i in range(40):
            color, shape = rng.choice(list(colors)), rng.choice(shapes)
            key = f"{k:09d}" if i != 3 else "long/" + "n" * 120 + f"{k:09d}"
            fmt = "PNG" if i % 2 else "JPEG"
            add(t, key + (".png" if fmt == "PNG" else ".jpg"), image(color, shape, fmt))
            caption = f"a {color} {shape}"
            if i % 5 == 0:
                add(t, key + ".json", json.dumps({"caption": caption, "width": 48}).encode())
            else:
                add(t, key + ".txt", caption.encode() + b"\n")
            k += 1
        if s == 1:
            add(t, "orphan.txt", b"a caption without its image")
PY
"$CLIPC" train $common --data "$TMPDIR/wds/{0..1}.tar" --out "$TMPDIR/run" --steps 6 --batch 16 --val-split 0.2 \
    --seed 3 > "$TMPDIR/train.log" 2> "$TMPDIR/train.err" || { cat "$TMPDIR/train.err"; exit 1; }
grep -q "1 sample skipped in $TMPDIR/wds/1.tar: no image member" "$TMPDIR/train.err" || { cat "$TMPDIR/train.err"; exit 1; }
test "$(grep -c "samples\? skipped" "$TMPDIR/train.err")" = 1
test -f "$TMPDIR/run/model/model.safetensors"
grep -q '\.tar@[0-9]*+[0-9]*/' "$TMPDIR/run/val.tsv"
"$CLIPC" eval --model "$TMPDIR/run/model" --data "$TMPDIR/wds/{0..1}.tar" --quiet 2>/dev/null | grep -q '"text_to_image"'
(cd / && "$CLIPC" eval --model "$TMPDIR/run/model" --data "$TMPDIR/run/val.tsv" --quiet) | grep -q '"text_to_image"'

# 2. clipc shards round trip (synthetic PNG images from pairs.tsv)
"$CLIPC" synth --out "$TMPDIR/data" --count 25 --seed 4 --quiet > /dev/null
"$CLIPC" shards --data "$TMPDIR/data/pairs.tsv" --out "$TMPDIR/out" --per-shard 10 > "$TMPDIR/shards.out"
grep -qx -- "--data '$TMPDIR/out/{00000..00002}.tar'" "$TMPDIR/shards.out" || { cat "$TMPDIR/shards.out"; exit 1; }
test "$(ls "$TMPDIR/out")" = "00000.tar
00001.tar
00002.tar"
/usr/bin/python3 - "$TMPDIR/data" "$TMPDIR/out" <<'PY'
import csv, os, sys, tarfile
data, out = sys.argv[1:]
rows = list(csv.DictReader(open(f"{data}/pairs.tsv", encoding="utf-8"), delimiter="\t"))
members = []
for s in range(3):
    with tarfile.open(f"{out}/{s:05d}.tar") as t:
        for m in t.getmembers():
            assert m.isfile(), m.name
            members.append((m.name, t.extractfile(m).read()))
want = []
for i, r in enumerate(rows):
    ext = os.path.splitext(r["image"])[1].lower()
    want.append((f"{i:09d}{ext}", open(os.path.join(data, r["image"]), "rb").read()))
    want.append((f"{i:09d}.txt", r["caption"].encode()))
assert [n for n, _ in members] == [n for n, _ in want], (members[:4], want[:4])
assert members == want, "member bytes differ"
print(f"{len(members)} members match")
PY
"$CLIPC" shards --data "$TMPDIR/out/{00000..00002}.tar" --out "$TMPDIR/again" --per-shard 100 > /dev/null
cmp "$TMPDIR/again/00000.tar" "$TMPDIR/out/00000.tar" > /dev/null && exit 1 # 25 samples in one shard now
/usr/bin/python3 -c "
import tarfile, sys
a = [m.name for m in tarfile.open(sys.argv[1]).getmembers()]
assert len(a) == 50 and a[0] == '000000000.png' and a[-1] == '000000024.txt', a
" "$TMPDIR/again/00000.tar"

# the same pairs from shards and from pairs.tsv train to the same losses (one more sample per shard)
"$CLIPC" synth --out "$TMPDIR/same" --count 80 --seed 6 --quiet > /dev/null
"$CLIPC" shards --data "$TMPDIR/same/pairs.tsv" --out "$TMPDIR/same_shards" --per-shard 30 > /dev/null
for src in "$TMPDIR/same/pairs.tsv" "$TMPDIR/same_shards/{00000..00002}.tar"; do
    "$CLIPC" train $common --data "$src" --out "$TMPDIR/same_run" --steps 5 --batch 16 --seed 2 \
        --loss-log "$TMPDIR/loss_$(basename "$src" | cut -c1-5).txt" > /dev/null 2> "$TMPDIR/same.err" || { cat "$TMPDIR/same.err"; exit 1; }
    ! grep -q "skipped" "$TMPDIR/same.err"
    rm -rf "$TMPDIR/same_run"
done
test "$(wc -l < "$TMPDIR/loss_pairs.txt")" = 5
cmp "$TMPDIR/loss_pairs.txt" "$TMPDIR/loss_{0000.txt" || { paste "$TMPDIR/loss_pairs.txt" "$TMPDIR/loss_{0000.txt"; exit 1; }

# 3. bad input
head -c 3000 /dev/urandom > "$TMPDIR/wds/2.tar"
if "$CLIPC" train $common --data "$TMPDIR/wds/{0..2}.tar" --out "$TMPDIR/bad" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "2.tar: tar header at offset 0" "$TMPDIR/err" || { cat "$TMPDIR/err"; exit 1; }
if "$CLIPC" train $common --data "$TMPDIR/wds/{0..1}.tar,$TMPDIR/nowhere/{0..1}.tar" --out "$TMPDIR/bad" 2> "$TMPDIR/err"; then
    exit 1
fi
grep -q "nowhere/0.tar: cannot open the shard" "$TMPDIR/err" || { cat "$TMPDIR/err"; exit 1; }
echo "webdataset ok"
