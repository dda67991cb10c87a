#!/bin/sh
# index_shards.sh — sharded indexes: `index build --shards 3` writes a manifest and 3 shard files;
# `index search` over the manifest returns exactly the ids and scores of the unsharded Flat index
# (and numpy's exact neighbours), with caller ids too; a bad manifest is refused naming the file.
set -eu
cd "$TMPDIR"
PY=/usr/bin/python3
fail() {
    echo "FAIL: $*"
    exit 1
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
np.save("ids.npy", (rng.permutation(n) * 3 + 5).astype(np.int64))
EOF2
"$CLIPC" index build --type Flat --vectors x.npy --out one.idx >/dev/null
"$CLIPC" index build --type Flat --vectors x.npy --shards 3 --out sh.manifest >/dev/null
for s in 0 1 2; do [ -f sh.manifest.shard$s ] || fail "shard $s missing"; done
grep -q '"clipc_manifest": 1' sh.manifest || fail "no manifest: $(cat sh.manifest)"
"$CLIPC" index search --index one.idx --queries q.npy --k 10 --out i1.npy --scores s1.npy >/dev/null
out=$("$CLIPC" index search --index sh.manifest --queries q.npy --k 10 --out i3.npy --scores s3.npy --gt gt.npy)
echo "$out" | grep -q "over 3 shards" || fail "not a sharded search: $out"
$PY - <<'EOF2' || fail "sharded Flat differs from one Flat"
import numpy as np
i1, i3, s1, s3, gt = (np.load(f) for f in ("i1.npy", "i3.npy", "s1.npy", "s3.npy", "gt.npy"))
assert (i1 == i3).all() and (s1 == s3).all(), (i1[:2], i3[:2])
assert (i3 == gt).mean() > 0.99, (i3 == gt).mean()
EOF2
# caller ids: shard = id % 3, same results as one Flat with the same ids
"$CLIPC" index build --type Flat --vectors x.npy --ids ids.npy --out onei.idx >/dev/null
"$CLIPC" index build --type HNSW16 --vectors x.npy --ids ids.npy --shards 2 --out h.manifest >/dev/null
"$CLIPC" index build --type Flat --vectors x.npy --ids ids.npy --shards 3 --out shi.manifest >/dev/null
"$CLIPC" index search --index onei.idx --queries q.npy --k 5 --out j1.npy >/dev/null
"$CLIPC" index search --index shi.manifest --queries q.npy --k 5 --out j3.npy >/dev/null
"$CLIPC" index search --index h.manifest --queries q.npy --k 5 --ef 64 --out jh.npy >/dev/null
$PY - <<'EOF2' || fail "sharded Flat with ids differs"
import numpy as np
assert (np.load("j1.npy") == np.load("j3.npy")).all()
assert (np.load("j1.npy") == np.load("jh.npy")).mean() > 0.9
EOF2
# bad manifests
printf '{"clipc_manifest": 1, "type": "Flat"' >bad.manifest
if "$CLIPC" index search --index bad.manifest --queries q.npy --out o.npy 2>err.txt; then fail "bad manifest accepted"; fi
grep -q "bad.manifest" err.txt || fail "error does not name the file: $(cat err.txt)"
sed 's/sh.manifest.shard1/nothere.shard1/' sh.manifest >gone.manifest
if "$CLIPC" index search --index gone.manifest --queries q.npy --out o.npy 2>err.txt; then fail "missing shard accepted"; fi
grep -q "nothere.shard1" err.txt || fail "error does not name the shard: $(cat err.txt)"
echo "index_shards: ok"
