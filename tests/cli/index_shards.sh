#!/bin/sh
# index_shards.sh — sharded indexes end to end: `index build --shards 3` writes a manifest and 3 shard
# files; `index search` over it returns exactly the ids and scores of the unsharded Flat (and numpy's
# exact neighbours), with caller ids too; `index add` / `index remove` route to the shards and then
# search equals the unsharded index given the same add / remove; `index info` lists the shards;
# `clipc search` over a model-built manifest prints what the unsharded index prints; bad manifests
# (not JSON, missing shard, other dim or type, wrong count, path escaping) are refused naming the file;
# a failed build keeps the manifest that was there; `clipc serve` refuses a manifest clearly.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
cd "$TMPDIR"
PY=/usr/bin/python3
fail() {
    echo "FAIL: $*"
    exit 1
}
# refused FILE WORD [command...]: the command fails, and its error names FILE and contains WORD
refused() {
    file=$1 word=$2
    shift 2
    if "$@" >/dev/null 2>err.txt; then fail "accepted: $* ($file)"; fi
    grep -q "$file" err.txt || fail "error does not name $file: $(cat err.txt)"
    grep -q -- "$word" err.txt || fail "error does not say '$word': $(cat err.txt)"
}
same() { # same A.npy B.npy [scores too]: ids (and scores) equal
    $PY - "$@" <<'EOF2' || fail "$1 and $2 differ"
import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape and (a == b).all(), (a[:2], b[:2])
EOF2
}
$PY - <<'EOF2'
import numpy as np, os
rng = np.random.default_rng(int(os.environ.get("CLIPC_TEST_SEED", "0") or 0) % (2**32))
d, n, nq = 16, 900, 30
x = rng.standard_normal((n, d)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
q = rng.standard_normal((nq, d)).astype(np.float32)
q /= np.linalg.norm(q, axis=1, keepdims=True)
np.save("x.npy", x); np.save("q.npy", q)
np.save("gt.npy", np.argsort(-(q.astype(np.float64) @ x.T.astype(np.float64)), axis=1)[:, :10].astype(np.int64))
np.save("ids.npy", rng.choice(10 * n, n, replace=False).astype(np.int64))
np.save("more.npy", (q[:7] * 0.9 + 0.1 * rng.standard_normal((7, d))).astype(np.float32))  # near the queries
np.save("rm.npy", np.array([0, 4, 5, 899, 903, 12345], dtype=np.int64))
np.save("x8.npy", x[:, :8].copy())
EOF2

# ---- build: manifest + 3 shard files; search equals the unsharded Flat (ids and scores)
"$CLIPC" index build --type Flat --vectors x.npy --out one.idx >/dev/null
"$CLIPC" index build --type Flat --vectors x.npy --shards 3 --out sh.manifest >/dev/null
for s in 0 1 2; do [ -f sh.manifest.shard$s ] || fail "shard $s missing"; done
grep -q '"clipc_manifest": 1' sh.manifest || fail "no manifest: $(cat sh.manifest)"
"$CLIPC" index search --index one.idx --queries q.npy --k 10 --out i1.npy --scores s1.npy >/dev/null
out=$("$CLIPC" index search --index sh.manifest --queries q.npy --k 10 --out i3.npy --scores s3.npy --gt gt.npy)
echo "$out" | grep -q "over 3 shards" || fail "not a sharded search: $out"
same i1.npy i3.npy
same s1.npy s3.npy
$PY -c "import numpy as np; assert (np.load('i3.npy') == np.load('gt.npy')).mean() > 0.99" || fail "sharded Flat is not exact"
# a filter over a manifest: each shard's allow-list over its own ids, same as the filtered unsharded Flat
f='id=1|2|3|4|5|6|7|8|9|10|11|12|100|200|301|302|599|898'
"$CLIPC" index search --index one.idx --queries q.npy --k 10 --filter "$f" --out f1.npy --scores g1.npy 2>/dev/null >/dev/null
"$CLIPC" index search --index sh.manifest --queries q.npy --k 10 --filter "$f" --out f3.npy --scores g3.npy 2>err.txt >/dev/null ||
    fail "filtered sharded search: $(cat err.txt)"
grep -q "filter: 18 of 900 items match" err.txt || fail "filter count over shards: $(cat err.txt)"
same f1.npy f3.npy
same g1.npy g3.npy
$PY -c "import numpy as np; i = np.load('f3.npy'); assert np.isin(i, [1,2,3,4,5,6,7,8,9,10,11,12,100,200,301,302,599,898]).all()" ||
    fail "sharded search returned an id outside the filter"
info=$("$CLIPC" index info sh.manifest)
echo "$info" | grep -q "vectors: *900" || fail "info count: $info"
echo "$info" | grep -q "  1  sh.manifest.shard1  300 vectors" || fail "info shards: $info"

# ---- caller ids: shard = id % 3, same results as one Flat with the same ids; HNSW in shards close
"$CLIPC" index build --type Flat --vectors x.npy --ids ids.npy --out onei.idx >/dev/null
"$CLIPC" index build --type HNSW16 --vectors x.npy --ids ids.npy --shards 2 --out h.manifest >/dev/null
"$CLIPC" index build --type Flat --vectors x.npy --ids ids.npy --shards 3 --out shi.manifest >/dev/null
"$CLIPC" index search --index onei.idx --queries q.npy --k 5 --out j1.npy >/dev/null
"$CLIPC" index search --index shi.manifest --queries q.npy --k 5 --out j3.npy >/dev/null
"$CLIPC" index search --index h.manifest --queries q.npy --k 5 --ef 64 --out jh.npy >/dev/null
same j1.npy j3.npy
$PY -c "import numpy as np; assert (np.load('j1.npy') == np.load('jh.npy')).mean() > 0.9" || fail "sharded HNSW recall"

# ---- add (automatic ids 900..906, into shards 0,1,2,0,...) and remove, then search equals one Flat
"$CLIPC" index add --index one.idx --vectors more.npy >/dev/null
"$CLIPC" index add --index sh.manifest --vectors more.npy >/dev/null
"$CLIPC" index remove --index one.idx --ids rm.npy >/dev/null
out=$("$CLIPC" index remove --index sh.manifest --ids rm.npy)
echo "$out" | grep -q "removed 5 of 6 ids" || fail "remove: $out"
# 900..906 went to shards 0 1 2 0 1 2 0; 0, 903 left shard 0, 4 shard 1, 5 and 899 shard 2
$PY -c "import json; c = [s['count'] for s in json.load(open('sh.manifest'))['shards']]; assert c == [301, 301, 300], c" ||
    fail "shard counts after add/remove: $(cat sh.manifest)"
"$CLIPC" index search --index one.idx --queries q.npy --k 10 --out a1.npy --scores b1.npy >/dev/null
"$CLIPC" index search --index sh.manifest --queries q.npy --k 10 --out a3.npy --scores b3.npy >/dev/null
same a1.npy a3.npy
same b1.npy b3.npy
$PY -c "import numpy as np; i = np.load('a3.npy'); assert (i[:7] >= 900).any() and not np.isin(i, [0, 4, 5, 899, 903]).any()" ||
    fail "added ids not found or removed ids found"
n_files=$(ls sh.manifest.shard* | wc -l)
[ "$n_files" -eq 3 ] || fail "replaced shard files left behind: $(ls sh.manifest.shard*)"
"$CLIPC" index add --index sh.manifest --vectors more.npy --ids rm.npy >/dev/null 2>err.txt && fail "add accepted 7 vectors for 5 ids"
refused sh.manifest "--out" "$CLIPC" index remove --index sh.manifest --ids rm.npy --out other.manifest

# ---- a failed build keeps the manifest and the shards that were there
cp sh.manifest keep.manifest
# (901 shards for 900 vectors: shard 900 gets none, and IVF needs training)
refused "shard 900 gets no vectors" "IVF" "$CLIPC" index build --type IVF1,Flat --vectors x.npy --shards 901 --out sh.manifest
cmp -s sh.manifest keep.manifest || fail "failed build changed the manifest"
"$CLIPC" index search --index sh.manifest --queries q.npy --k 10 --out a4.npy >/dev/null || fail "manifest broken by a failed build"
same a1.npy a4.npy

# ---- bad manifests: the error names the file and says what is wrong; exit status 1
printf '{"clipc_manifest": 1, "type": "Flat"' >bad.manifest
refused bad.manifest "bad shard manifest" "$CLIPC" index search --index bad.manifest --queries q.npy --out o.npy
printf '{ not json' >nj.manifest
refused nj.manifest "manifest" "$CLIPC" index info nj.manifest
sed 's/sh.manifest.shard1[.a-z]*"/nothere.shard1"/' sh.manifest >gone.manifest
refused gone.manifest "nothere.shard1" "$CLIPC" index search --index gone.manifest --queries q.npy --out o.npy
sed 's/"count": 300/"count": 302/' sh.manifest >count.manifest
refused count.manifest "count 300/302" "$CLIPC" index search --index count.manifest --queries q.npy --out o.npy
sed 's/"file": "[^"]*shard2[.a-z]*"/"file": "..\/escape.idx"/' sh.manifest >esc.manifest
refused esc.manifest "relative path" "$CLIPC" index search --index esc.manifest --queries q.npy --out o.npy
"$CLIPC" index build --type Flat --vectors x8.npy --out d8.idx >/dev/null
sed 's/"file": "[^"]*shard0[.a-z]*"/"file": "d8.idx"/' sh.manifest >dim.manifest
refused dim.manifest "dim 8/16" "$CLIPC" index search --index dim.manifest --queries q.npy --out o.npy
sed 's/"type": "Flat"/"type": "HNSW16"/' sh.manifest >type.manifest
refused type.manifest "is a Flat index, the manifest says HNSW" "$CLIPC" index search --index type.manifest --queries q.npy --out o.npy
refused sh.manifest "shard manifest" "$CLIPC" index tune --index sh.manifest --queries q.npy --target-recall 0.9

# ---- clipc search over a model-built manifest prints what the unsharded index prints
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
$PY "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 --n-images 1 --n-texts 1 >/dev/null
model="$TMPDIR/model_f32"
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$model/"
"$CLIPC" synth --out syn --count 12 --size 40 --seed "$seed" --quiet >/dev/null
"$CLIPC" index build --model "$model" --images syn/images --out img.idx --no-cache --quiet >/dev/null
out=$("$CLIPC" index build --model "$model" --images syn/images --shards 3 --out img.manifest --no-cache --quiet)
echo "$out" | grep -q "indexed 12 images into img.manifest (Flat, 24-d, 3 shards)" || fail "model build: $out"
for mode in "" --json; do
    "$CLIPC" search --index img.idx --text "a red square" --k 7 $mode >r1.txt
    "$CLIPC" search --index img.manifest --text "a red square" --k 7 $mode >r3.txt
    cmp -s r1.txt r3.txt || fail "clipc search $mode differs: $(cat r1.txt) vs $(cat r3.txt)"
    "$CLIPC" search --index img.idx --text "a red square" --k 7 --filter 'id=1|5|7|10' $mode >r1.txt
    "$CLIPC" search --index img.manifest --text "a red square" --k 7 --filter 'id=1|5|7|10' $mode >r3.txt
    cmp -s r1.txt r3.txt || fail "filtered clipc search $mode differs: $(cat r1.txt) vs $(cat r3.txt)"
done
[ "$(wc -l <r1.txt)" -eq 1 ] && grep -q '"id":10' r3.txt || fail "filtered search over shards: $(cat r3.txt)"
"$CLIPC" search --index img.manifest --image syn/images/000005.png --k 1 | grep -q "000005.png$" ||
    fail "image query over shards does not find itself"
refused img.manifest "shard manifest" "$CLIPC" serve --index img.manifest --port 0 --quiet
echo "index_shards: ok"
