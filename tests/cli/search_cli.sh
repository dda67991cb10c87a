#!/bin/sh
# search_cli.sh — `clipc index build --model` / `index add` / `clipc search` end to end on a random model
# and synthetic images: an indexed image finds itself first (score ~1), an indexed caption finds itself,
# JSON output, templates, the embedding cache (re-run and added/changed files embed only what is new),
# multi-scale features, time decay against a numpy re-ranking of the same candidates, and bad input.
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
$CLIPC synth --out syn --count 20 --size 40 --seed "$seed" --quiet >/dev/null
$CLIPC synth --out more --count 6 --size 44 --seed "$((seed + 1))" --jpeg --quiet >/dev/null
mkdir -p syn/images/nested/deeper
cp more/images/000000.jpg syn/images/nested/deeper/extra.JPG # recursion and extension case
echo "not an image" >syn/images/broken.png
echo "ignored" >syn/images/notes.txt
tail -n +2 syn/pairs.tsv | cut -f2 >captions.txt

# ---- build from a folder: 21 images (one unreadable skipped, named), model recorded in the index.
# Flat where exact answers are checked: HNSW is approximate (and with a random model all embeddings are
# nearly parallel, the hardest case for its graph).
out=$($CLIPC index build --model "$model" --images syn/images --type Flat --out img.idx --quiet 2>err.txt)
echo "$out" | grep -q "^indexed 21 images into img.idx (Flat, 24-d): 21 embedded, 0 from cache, 1 skipped" || fail "build: $out"
grep -q "broken.png" err.txt || fail "unreadable image not named: $(cat err.txt)"
info=$($CLIPC index info img.idx)
echo "$info" | grep -q "model = $(cd "$model" && pwd -P)" || fail "model not recorded: $info"
echo "$info" | grep -q "kind = images" || fail "kind not recorded: $info"

# ---- image -> image: every probe image is its own best match, score ~1, path absolute
for name in 000003 000011 000019; do
    line=$($CLIPC search --index img.idx --image "syn/images/$name.png" --k 3 | head -n 1)
    want="$(pwd -P)/syn/images/$name.png"
    echo "$line" | awk -F'\t' -v want="$want" '$1 == 1 && $2 >= 0.9999 && $3 == want { ok = 1 } END { exit !ok }' ||
        fail "image $name: top result '$line'"
done
line=$($CLIPC search --index img.idx --image more/images/000000.jpg --k 1)
echo "$line" | grep -q "nested/deeper/extra.JPG$" || fail "nested image not found first: $line"

# ---- text -> image: k lines, ranks 1..k, scores descending; JSON has the same results
$CLIPC search --index img.idx --text "a large red circle" --k 5 >txt.out
$CLIPC search --index img.idx --text "a large red circle" --k 5 --json >txt.json
$PY - <<'EOF' || fail "text search output"
import json
rows = [l.rstrip("\n").split("\t") for l in open("txt.out")]
assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5], rows
scores = [float(r[1]) for r in rows]
assert scores == sorted(scores, reverse=True), scores
doc = json.load(open("txt.json"))
res = doc["results"]
assert [r["rank"] for r in res] == [1, 2, 3, 4, 5]
assert [r["path"] for r in res] == [r[2] for r in rows]
assert all(abs(r["score"] - s) < 1e-4 for r, s in zip(res, scores))
assert doc["query"] == {"text": "a large red circle"} and doc["k"] == 5
EOF
# a template is the same as writing the full text
a=$($CLIPC search --index img.idx --text "red circle" --template "a photo of a {}." --k 4)
b=$($CLIPC search --index img.idx --text "a photo of a red circle." --k 4)
[ "$a" = "$b" ] || fail "template differs: $a / $b"
# k larger than the index gives every item once
[ "$($CLIPC search --index img.idx --text "x" --k 1000 | wc -l)" -eq 21 ] || fail "k > items"

# ---- captions: text -> text finds the identical caption first; image -> text runs
$CLIPC index build --model "$model" --texts captions.txt --out cap.idx --quiet >/dev/null
for n in 2 9 17; do
    caption=$(sed -n "${n}p" captions.txt)
    line=$($CLIPC search --index cap.idx --text "$caption" --k 2 | head -n 1)
    echo "$line" | awk -F'\t' -v want="$caption" '$1 == 1 && $2 >= 0.9999 && $3 == want { ok = 1 } END { exit !ok }' ||
        fail "caption $n: top result '$line'"
done
$CLIPC search --index cap.idx --image syn/images/000004.png --k 3 --json | $PY -c "
import json, sys
doc = json.load(sys.stdin)
assert len(doc['results']) == 3 and all('caption' in r for r in doc['results']), doc
" || fail "image -> text"

# long captions (beyond the 77-token context) as averaged windows, query in the same mode
$PY -c "
caps = [l.strip() for l in open('captions.txt')]
for i in range(8):
    print(' and '.join(caps[(i + j) % len(caps)] for j in range(8)))  # ~130 words each
" >long.txt
$CLIPC index build --model "$model" --texts long.txt --long-text window --out long.idx --quiet >/dev/null
$CLIPC index info long.idx | grep -q "long_text = window" || fail "long-text mode not recorded"
caption=$(sed -n 5p long.txt)
line=$($CLIPC search --index long.idx --text "$caption" --long-text window --k 1)
echo "$line" | awk -F'\t' -v want="$caption" '$2 >= 0.9999 && $3 == want { ok = 1 } END { exit !ok }' || fail "long caption: $line"
line=$($CLIPC search --index long.idx --text "$caption" --k 1)
echo "$line" | awk -F'\t' '$2 >= 0.9999 { ok = 1 } END { exit !ok }' || fail "the index's long-text mode is not the default: $line"
line=$($CLIPC search --index long.idx --text "$caption" --long-text truncate --k 1 2>err.txt)
echo "$line" | awk -F'\t' '$2 < 0.9999 { ok = 1 } END { exit !ok }' || fail "truncated query scored like windows: $line"
grep -q "truncated" err.txt || fail "no truncation note: $(cat err.txt)"

# ---- the embedding cache: a re-run embeds nothing; a new file embeds one
out=$($CLIPC index build --model "$model" --images syn/images --type Flat --out img.idx --quiet 2>/dev/null)
echo "$out" | grep -q ": 0 embedded, 21 from cache, 1 skipped" || fail "cache re-run: $out"
cp more/images/000001.jpg syn/images/new1.jpg
out=$($CLIPC index build --model "$model" --images syn/images --type Flat --out img.idx --quiet 2>/dev/null)
echo "$out" | grep -q "^indexed 22 images .*: 1 embedded, 21 from cache" || fail "cache with a new file: $out"
# another index type from the same cache (another output: --cache names the cache)
out=$($CLIPC index build --model "$model" --images syn/images --type HNSW16 --out hnsw.idx --cache img.idx.cache --quiet 2>/dev/null)
echo "$out" | grep -q "^indexed 22 images into hnsw.idx (HNSW16, 24-d): 0 embedded, 22 from cache" || fail "HNSW from the cache: $out"
[ "$($CLIPC search --index hnsw.idx --text "a green star" --k 5 | wc -l)" -eq 5 ] || fail "HNSW search"
# the cached build gives the same results as a fresh one
$CLIPC index build --model "$model" --images syn/images --type Flat --out fresh.idx --no-cache --quiet >/dev/null 2>&1
$CLIPC index build --model "$model" --images syn/images --type Flat --out cached.idx --cache img.idx.cache --quiet >/dev/null 2>&1
a=$($CLIPC search --index fresh.idx --text "blue square" --k 22)
b=$($CLIPC search --index cached.idx --text "blue square" --k 22)
[ "$a" = "$b" ] || fail "cached embeddings differ from fresh ones"

# ---- index add: only new files are embedded; a changed file is re-embedded and replaces its item
out=$($CLIPC index add --index img.idx --images more/images --quiet 2>/dev/null)
echo "$out" | grep -q "^added 6 images to img.idx (Flat, 24-d, now 28 items; 0 already indexed, 0 changed)" || fail "add: $out"
cp img.idx before_noop.idx
out=$($CLIPC index add --index img.idx --images more/images --quiet 2>/dev/null)
echo "$out" | grep -q "^added 0 images .*now 28 items; 6 already indexed, 0 changed" || fail "add again: $out"
[ ! img.idx -nt before_noop.idx ] && cmp -s img.idx before_noop.idx || fail "an add with nothing new rewrote the index"
line=$($CLIPC search --index img.idx --image more/images/000004.jpg --k 1)
echo "$line" | grep -q "more/images/000004.jpg$" || fail "added image not found: $line"
sleep 0.01
cp syn/images/000007.png more/images/000004.jpg # same name, other content (a PNG now)
out=$($CLIPC index add --index img.idx --images more/images --quiet 2>/dev/null)
echo "$out" | grep -q "^added 1 images .*now 28 items; 5 already indexed, 1 changed): 1 embedded" || fail "changed file: $out"
n=$($CLIPC search --index img.idx --image syn/images/000007.png --k 2 | awk -F'\t' '$2 >= 0.9999' | wc -l)
[ "$n" -eq 2 ] || fail "changed file not re-embedded ($n results with score ~1)"

# ---- multi-scale features (the model takes 36 px; 36 and 48 averaged): an image still finds itself
$CLIPC index build --model "$model" --images syn/images --multiscale 36,48 --out ms.idx --quiet >/dev/null 2>&1
$CLIPC index info ms.idx | grep -q "multiscale = 36,48" || fail "scales not recorded"
line=$($CLIPC search --index ms.idx --image syn/images/000005.png --k 1)
echo "$line" | awk -F'\t' '$2 >= 0.9999 && $3 ~ /000005.png$/ { ok = 1 } END { exit !ok }' || fail "multiscale: $line"
# (all 21 scores at full precision: with a random model every embedding is nearly parallel, so a
# short list at 4 decimals can coincide)
a=$($CLIPC search --index img.idx --image syn/images/000005.png --k 21 --json)
b=$($CLIPC search --index ms.idx --image syn/images/000005.png --k 21 --json)
[ "$a" != "$b" ] || fail "multiscale features equal single-scale ones"

# ---- time decay: --meta timestamps (unix seconds and ISO dates), re-ranking of 3k candidates
$PY - "$seed" <<'EOF'
import random, sys
rng = random.Random(int(sys.argv[1]))
caps = [l.rstrip("\n") for l in open("captions.txt")]
with open("times.tsv", "w") as f:
    f.write("caption\ttime\n")
    for i, c in enumerate(caps):
        day = rng.randint(0, 60)
        f.write(f"{c}\t{1700000000 - day * 86400}\n" if i % 2 else f"{c}\t2023-{9 + day // 30:02d}-{1 + day % 28:02d}T06:00:00Z\n")
    f.write("a caption that is not indexed\t1700000000\n")
EOF
$CLIPC index build --model "$model" --texts captions.txt --meta times.tsv --out news.idx --quiet >/dev/null 2>err.txt
grep -q "1 of 21 rows name no caption" err.txt || fail "unmatched meta row not noted: $(cat err.txt)"
query=$(sed -n 3p captions.txt)
$CLIPC search --index news.idx --text "$query" --k 20 --json >plain.json
$CLIPC search --index news.idx --text "$query" --k 4 --decay 0.05 --now 1700000000 --json >decay.json
$PY - <<'EOF' || fail "decay re-ranking"
import calendar, json, math, time
plain = json.load(open("plain.json"))["results"]
got = json.load(open("decay.json"))["results"]
times = {}
for line in list(open("times.tsv"))[1:]:
    cap, t = line.rstrip("\n").split("\t")
    times[cap] = int(t) if t.isdigit() else calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
for r in plain:
    assert r["timestamp"] == times[r["caption"]], (r, times[r["caption"]])
cands = plain[:12]  # 3k candidates of the undecayed ranking
rescored = sorted(((r["score"] * math.exp(-0.05 * max(0, 1700000000 - r["timestamp"]) / 86400), i, r["id"])
                   for i, r in enumerate(cands)), key=lambda t: (-t[0], t[1]))[:4]
assert [r["id"] for r in got] == [t[2] for t in rescored], (got, rescored)
assert all(abs(r["score"] - t[0]) < 1e-5 for r, t in zip(got, rescored))
EOF

# ---- --filter: only items whose timestamp is in range (or listed ids); equals the filtered ranking
$CLIPC search --index news.idx --text "$query" --k 21 --json >all.json
$CLIPC search --index news.idx --text "$query" --k 5 --filter "time>=2023-10-01,time<1699900000" --json >filt.json ||
    fail "--filter search"
$CLIPC search --index news.idx --text "$query" --k 5 --filter "id=2|7|11|30" --json >ids.json || fail "--filter id="
$PY - <<'EOF' || fail "filtered search"
import json
allr = json.load(open("all.json"))["results"]
lo, hi = 1696118400, 1699900000 - 1  # 2023-10-01T00:00:00Z
want = [r for r in allr if "timestamp" in r and lo <= r["timestamp"] <= hi][:5]
got = json.load(open("filt.json"))
assert got["query"]["filter"] == "time>=2023-10-01,time<1699900000", got["query"]
assert [r["id"] for r in got["results"]] == [r["id"] for r in want], (got["results"], want)
assert len(want) >= 2, want
ids = json.load(open("ids.json"))["results"]
assert [r["id"] for r in ids] == [r["id"] for r in allr if r["id"] in (2, 7, 11)], ids
EOF
if $CLIPC search --index news.idx --text "$query" --filter "time>=yesterday" 2>err.txt; then fail "bad --filter accepted"; fi
grep -q "time>=yesterday" err.txt || fail "bad --filter error: $(cat err.txt)"
$PY -c "import numpy as np; np.save('q24.npy', np.random.default_rng(2).standard_normal((3, 24)).astype(np.float32))"
$CLIPC index search --index news.idx --queries q24.npy --k 3 --filter "id=4|9" --out fi.npy >/dev/null 2>err.txt ||
    fail "index search --filter: $(cat err.txt)"
grep -q "2 of 20 items match" err.txt || fail "index search --filter count: $(cat err.txt)"
$PY -c "
import numpy as np; ids = np.load('fi.npy')
assert ids.shape == (3, 3) and set(ids[:, :2].ravel()) <= {4, 9} and (ids[:, 2] == -1).all(), ids" || fail "index search --filter ids"

# ---- tags: --meta's third column; --filter tag=A|B (any of), clauses ANDed; JSON results list the tags
$PY - "$seed" <<'EOF'
import random, sys
rng = random.Random(int(sys.argv[1]))
caps = [l.rstrip("\n") for l in open("captions.txt")]
with open("tags.tsv", "w") as f:
    f.write("caption\ttime\ttags\n")
    for i, c in enumerate(caps):
        tags = [t for t, on in (("even", i % 2 == 0), ("three", i % 3 == 0), ("caf\u00e9 noir", i % 4 == 1)) if on]
        t = "" if i % 5 == 0 else str(1700000000 - rng.randint(0, 60) * 86400)
        f.write(f"{c}\t{t}\t{' , '.join(tags)}\n")
EOF
$CLIPC index build --model "$model" --texts captions.txt --meta tags.tsv --out tagged.idx --quiet >/dev/null 2>err.txt ||
    fail "index build with tags: $(cat err.txt)"
$CLIPC search --index tagged.idx --text "$query" --k 20 --json >tall.json
$CLIPC search --index tagged.idx --text "$query" --k 5 --filter "tag=three" --json >t3.json || fail "--filter tag="
$CLIPC search --index tagged.idx --text "$query" --k 20 --filter "tag=even|café noir,time>=1697000000" --json >t2.json ||
    fail "--filter tag=A|B,time"
$PY - <<'EOF' || fail "tag-filtered search"
import json
rows = {l.split("\t")[0]: l.rstrip("\n").split("\t") for l in list(open("tags.tsv"))[1:]}
allr = json.load(open("tall.json"))["results"]
assert len(allr) == 20, len(allr)
for r in allr:
    want = [t.strip() for t in rows[r["caption"]][2].split(",") if t.strip()]
    assert r.get("tags", []) == want, (r, want)
    assert ("timestamp" in r) == (rows[r["caption"]][1] != ""), r
t3 = json.load(open("t3.json"))["results"]
assert [r["id"] for r in t3] == [r["id"] for r in allr if "three" in r.get("tags", [])][:5], t3
t2 = json.load(open("t2.json"))["results"]
want = [r["id"] for r in allr if {"even", "café noir"} & set(r.get("tags", [])) and r.get("timestamp", 0) >= 1697000000]
assert [r["id"] for r in t2] == want and len(want) >= 2, (t2, want)
EOF
printf 'caption\ttime\ttags\n%s\t\tok, a|b\n' "$query" >badtags.tsv
if $CLIPC index build --model "$model" --texts captions.txt --meta badtags.tsv --out bt.idx --quiet 2>err.txt; then
    fail "a tag holding '|' accepted"
fi
grep -q "badtags.tsv:2" err.txt && grep -q "a|b" err.txt || fail "bad tag error: $(cat err.txt)"
[ ! -e bt.idx ] || fail "an index was written from bad metadata"

# ---- bad input: clear errors, non-zero exits
if $CLIPC search --index img.idx --text "x" --k 0 2>err.txt; then fail "k = 0 accepted"; fi
grep -q "between 1 and 1000" err.txt || fail "$(cat err.txt)"
if $CLIPC search --index img.idx --image missing.png 2>err.txt; then fail "missing query image"; fi
grep -q "missing.png" err.txt || fail "$(cat err.txt)"
if $CLIPC search --index img.idx --text "x" --template "no slot" 2>err.txt; then fail "template without {}"; fi
grep -q "has no {}" err.txt || fail "$(cat err.txt)"
$PY -c "import numpy as np; np.save('v8.npy', np.random.default_rng(1).standard_normal((10, 8)).astype(np.float32))"
$CLIPC index build --type Flat --vectors v8.npy --out v8.idx --quiet >/dev/null
if $CLIPC search --index v8.idx --text "x" 2>err.txt; then fail "index without a model"; fi
grep -q "does not record the model" err.txt || fail "$(cat err.txt)"
if $CLIPC search --index v8.idx --model "$model" --text "x" 2>err.txt; then fail "dimension mismatch"; fi
grep -q "gives 24-d embeddings but the index v8.idx holds 8-d" err.txt || fail "$(cat err.txt)"
if $CLIPC index add --index cap.idx --images more/images 2>err.txt; then fail "images into a caption index"; fi
grep -q "holds texts" err.txt || fail "$(cat err.txt)"
mkdir empty
if $CLIPC index build --model "$model" --images empty --out e.idx 2>err.txt; then fail "empty folder"; fi
grep -q "no images" err.txt || fail "$(cat err.txt)"
[ ! -e e.idx ] || fail "index written for an empty folder"
echo "search CLI ok"
