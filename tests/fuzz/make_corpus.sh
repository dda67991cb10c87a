#!/bin/sh
# make_corpus.sh — writes the seed corpora of the fuzz targets: BUILD/corpus/<target>/ (generated, not
# committed; crash reproducers live in tests/fuzz/regress/<target>/). Binary seeds come from
# BUILD/gen_seeds (clipc's own writers); text seeds are written here; with /usr/bin/python3 and PIL,
# a few more PNG layouts (palette, 16-bit, alpha, interlaced, 1-bit), progressive/CMYK JPEGs, and
# WebP, GIF, BMP and TIFF files (for the decoders of branch images).
# Usage: tests/fuzz/make_corpus.sh [BUILD]   (default build-fuzz)
set -e
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
out="$build/corpus"
rm -rf "$out"
mkdir -p "$out"
ASAN_OPTIONS=detect_leaks=0 "$build/gen_seeds" "$out"

seed() { # seed TARGET NAME: writes stdin to the seed file
    mkdir -p "$out/$1"
    cat >"$out/$1/$2"
}

# ---- datasets: first byte picks the reader (fuzz_dataset.c): 0 json, 1 Karpathy json, 2 tsv, 3 csv
printf '0{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "sub/b.png"}],
 "annotations": [{"image_id": 1, "caption": "a cat"}, {"image_id": 2, "caption": "caf\\u00e9 \\ud83d\\ude00"},
 {"image_id": 1, "caption": "another cat"}]}\n' | seed fuzz_dataset coco.json
printf '1{"images": [{"filepath": "train2014", "filename": "x.jpg", "split": "train",
 "sentences": [{"raw": "a dog"}, {"raw": "two dogs"}]},
 {"filepath": "val2014", "filename": "y.jpg", "split": "restval", "sentences": [{"raw": "a bird"}]},
 {"filepath": "val2014", "filename": "z.jpg", "split": "test", "sentences": [{"raw": "no"}]}]}\n' | seed fuzz_dataset karpathy.json
printf '0{"images": [{"filepath": "p", "filename": "q.jpg", "split": "val", "sentences": [{"raw": "auto"}]}]}\n' | seed fuzz_dataset karpathy_auto.json
printf '2image\tcaption\na.jpg\ta cat\nb.jpg\t"quoted\tcaption"\n\nc.jpg\t\xff\xfe bad utf8\n' | seed fuzz_dataset pairs.tsv
printf '3filepath,title,extra\r\na.jpg,"a ""quoted"" cat",1\r\n"b,c.jpg","multi\nline",2\r\n' | seed fuzz_dataset pairs.csv

# ---- --meta TSV
printf 'key\ttime\na cat\t1700000000\na dog\t2024-05-01\n# comment\ntwo birds\t2024-05-01T12:30:00Z\n\t-5\n' | seed fuzz_meta_tsv meta.tsv
printf 'a cat\t2024-02-30 10:00:00\nnot\ta\ttime\n' | seed fuzz_meta_tsv bad.tsv
printf 'key\ttime\ttags\na cat\t1700000000\tcat, pet\na dog\t\tdog,pet,pet\ntwo birds\t2024-05-01\t\n' | seed fuzz_meta_tsv tags.tsv
printf 'a cat\t\tcat,,pet\na dog\t5\ta|b\n' | seed fuzz_meta_tsv bad_tags.tsv

# ---- search filters
printf 'time>=2024-01-01,time<2024-07-01T12:00:00Z' | seed fuzz_filter range.txt
printf 'id=3|5|8,id=5|8|13' | seed fuzz_filter ids.txt
printf 'time=1699136000,id=0|1|2|40' | seed fuzz_filter both.txt
printf 'time>-5,time<=1700086400,,id=' | seed fuzz_filter bad.txt
printf 'tag=cat|dog,tag=pet,time>=2024-01-01' | seed fuzz_filter tags.txt

# ---- shard manifests (index/manifest.c): good ones, and each kind of refusal
printf '{"clipc_manifest": 1, "type": "Flat", "metric": "ip", "dim": 16, "model": "",\n "shards": [\n  {"file": "x.shard0", "count": 301},\n  {"file": "x.shard1", "count": 300}]}\n' | seed fuzz_manifest two.json
printf '{"shards": [{"count": 0, "file": "sub/a b.idx"}], "model": "ViT-B-32 \\"q\\" \\u00e9", "dim": 512, "metric": "l2", "type": "HNSW32,Flat", "clipc_manifest": 1}' | seed fuzz_manifest reordered.json
printf '{"clipc_manifest": 1, "type": "Flat", "metric": "ip", "dim": 8, "model": "", "shards": [{"file": "../up.idx", "count": 1}]}' | seed fuzz_manifest escape.json
printf '{"clipc_manifest": 1, "type": "Flat", "metric": "ip", "dim": 8, "model": "", "shards": [{"file": "a", "count": 1}, {"file": "a", "count": 2}]}' | seed fuzz_manifest twice.json
printf '{"clipc_manifest": 1, "type": "Flat", "metric": "cos", "dim": 0, "model": "", "shards": [], "extra": 1}' | seed fuzz_manifest bad_fields.json
printf '{"clipc_manifest": 1, "type": "Flat", "shards": [{"file": "a", "count": -1' | seed fuzz_manifest truncated.json

# ---- tokenizer text
printf 'a photo of a cat' | seed fuzz_tokenizer_text plain.txt
printf 'Hello,&amp; W\xc3\xb6rld! &#x1F600; <|startoftext|>it'"'"'s  \xe2\x80\x83 \xce\xa3\xce\x91\xce\xa3 \xc4\xb0stanbul 123' | seed fuzz_tokenizer_text unicode.txt
printf '\xff\xc0\x80\xed\xa0\x80 broken utf8 &notin; &amp;amp;' | seed fuzz_tokenizer_text invalid.txt
awk 'BEGIN { for (i = 0; i < 40; i++) printf "word%d ", i }' | seed fuzz_tokenizer_text long.txt

# ---- HTTP requests (fuzz_http.c): request line, headers, empty line, body
printf 'GET /api/search?q=a%%20photo&k=5&decay=0.5\n\n' | seed fuzz_http search.txt
printf 'GET /api/search?q=&k=0\n\n' | seed fuzz_http search_bad.txt
printf 'GET /api/item/0?thumb=1\n\n' | seed fuzz_http thumb.txt
printf 'GET /api/item/1\n\n' | seed fuzz_http item.txt
printf 'GET /healthz\n\n' | seed fuzz_http health.txt
printf 'GET /metrics\n\n' | seed fuzz_http metrics.txt
printf 'GET /\n\n' | seed fuzz_http page.txt
printf 'DELETE /api/item/2\n\n' | seed fuzz_http delete.txt
png=$(ls "$out"/fuzz_image/one.png)
{ printf 'POST /api/search?k=3\nContent-Type: image/png\nContent-Length: %s\n\n' "$(wc -c <"$png")"; cat "$png"; } |
    seed fuzz_http raw_png.txt
{ printf 'POST /api/search\nContent-Type: multipart/form-data; boundary=XyZ\n\n'
  printf -- '--XyZ\r\nContent-Disposition: form-data; name="k"\r\n\r\n7\r\n'
  printf -- '--XyZ\r\nContent-Disposition: form-data; name="decay"\r\n\r\n0.1\r\n'
  printf -- '--XyZ\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
  cat "$png"; printf '\r\n--XyZ--\r\n'; } | seed fuzz_http multipart.txt

# ---- more image layouts, when PIL is there
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
    /usr/bin/python3 - "$out/fuzz_image" <<'PY'
import sys, io
from PIL import Image
out = sys.argv[1]
base = Image.new("RGB", (13, 9))
base.putdata([((x * 19) % 256, (y * 27) % 256, (x * y) % 256) for y in range(9) for x in range(13)])
base.convert("P", palette=Image.ADAPTIVE, colors=7).save(f"{out}/palette.png")
base.convert("RGBA").save(f"{out}/rgba.png")
base.convert("LA").save(f"{out}/la.png")
base.convert("1").save(f"{out}/bilevel.png")
base.convert("I").point(lambda v: v * 200).save(f"{out}/gray16.png")
base.save(f"{out}/interlaced.png", interlace=1)
base.save(f"{out}/progressive.jpg", progressive=True, quality=60)
base.convert("CMYK").save(f"{out}/cmyk.jpg", quality=60)
base.save(f"{out}/subsampled.jpg", subsampling=2, quality=40)
# formats the decoder may add (branch images): seeds in place for when they are merged
for name, kwargs in [("lossy.webp", {"quality": 50}), ("lossless.webp", {"lossless": True}), ("anim.gif", {}),
                     ("rgb.bmp", {}), ("rgb.tiff", {}), ("lzw.tiff", {"compression": "tiff_lzw"})]:
    try:
        (base.convert("P") if name.endswith(".gif") else base).save(f"{out}/{name}", **kwargs)
    except Exception:
        pass
PY
fi
# ---- tar shards (fuzz_tar.c): first byte '0' a tar archive, '1' a shard spec
printf '1s/{00000..00012}.tar,b/x-{0..2}.tar' | seed fuzz_tar spec.txt
printf '1{a,b}/{8..10}.tar' | seed fuzz_tar spec_list.txt
if [ -x /usr/bin/python3 ]; then
    mkdir -p "$out/fuzz_tar"
    /usr/bin/python3 - "$out/fuzz_tar" <<'PY'
import io, sys, tarfile
def shard(fmt, long_names):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for i, (name, data) in enumerate([("0.jpg", b"\xff\xd8\xff"), ("0.txt", b"a cat\n"), ("1.png", b"\x89PNG"),
                                          ("1.json", b'{"caption": "a dog"}'), ("2.txt", b"orphan")]):
            if long_names and i < 2:
                name = "d" * 120 + "/" + name
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b"0" + b.getvalue().rstrip(b"\0") + b"\0" * 1024
for fmt, tag in ((tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax"), (tarfile.USTAR_FORMAT, "ustar")):
    open(f"{sys.argv[1]}/{tag}.tar", "wb").write(shard(fmt, fmt != tarfile.USTAR_FORMAT))
PY
fi

n=$(find "$out" -type f | wc -l)
echo "make_corpus: $n seed files in $out"
