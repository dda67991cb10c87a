#!/bin/sh
# index_cli.sh — "clipc index" end to end: build every type, search with ground truth (recall
# parsed from the output), info, tune, add, remove, and the bad-input cases (NaN rows, wrong
# dimension, k too large, corrupted and truncated files, duplicate ids, nprobe > nlist).
set -eu
cd "$TMPDIR"
PY=/usr/bin/python3
fail() {
    echo "FAIL: $*"
    exit 1
}
# recall@10 from a search line, compared with a minimum
check_recall() { # output minimum
    r=$(echo "$1" | sed -n 's/.*recall@10 \([0-9.]*\).*/\1/p')
    [ -n "$r" ] || fail "no recall in: $1"
    awk -v r="$r" -v m="$2" 'BEGIN { exit !(r >= m) }' || fail "recall $r < $2 in: $1"
}

$PY - <<'EOF'
import numpy as np, os
rng = np.random.default_rng(int(os.environ.get("CLIPC_TEST_SEED", "0") or 0) % (2**32))
d, n, nq = 32, 3000, 60
centres = rng.standard_normal((20, d)) * 3
x = centres[rng.integers(0, 20, n)] + rng.standard_normal((n, d))
x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
q = centres[rng.integers(0, 20, nq)] + rng.standard_normal((nq, d))
q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
gt = np.argsort(-(q @ x.T), axis=1)[:, :100].astype(np.int64)
np.save("x.npy", x); np.save("q.npy", q); np.save("gt.npy", gt)
np.save("ids.npy", (np.arange(n) * 10 + 7).astype(np.int64))
np.save("gt_ids.npy", gt * 10 + 7)
bad = x.copy(); bad[3, 5] = np.nan; bad[8, 0] = np.inf; np.save("bad.npy", bad)
np.save("q31.npy", q[:, :31].copy())
np.save("dup_ids.npy", np.array([1, 2, 2] + list(range(3, n)), np.int64))
np.save("more.npy", x[:5] * 0.5 + 0.5 * x[5:10])
with open("texts.txt", "w") as f:
    for i in range(n):
        f.write("images/%d.jpg\n" % i)
EOF

# --- every type builds and finds neighbours
out=$($CLIPC index build --type Flat --vectors x.npy --out flat.idx --quiet)
echo "$out" | grep -q "built Flat" || fail "build output: $out"
out=$($CLIPC index search --index flat.idx --queries q.npy --k 10 --out I.npy --scores S.npy --gt gt.npy)
echo "$out" | grep -q "queries/s" || fail "no queries/s: $out"
check_recall "$out" 0.999
$PY -c "
import numpy as np
I, S = np.load('I.npy'), np.load('S.npy')
assert I.shape == (60, 10) and I.dtype == np.int64 and S.shape == (60, 10) and S.dtype == np.float32
x, q = np.load('x.npy'), np.load('q.npy')
ref = np.sort(q @ x.T, axis=1)[:, ::-1][:, :10]
assert np.abs(S - ref).max() < 1e-4, np.abs(S - ref).max()
" || fail "Flat results differ from numpy"

$CLIPC index build --type HNSW16 --vectors x.npy --ids ids.npy --texts texts.txt --model test-model --out h.idx --threads 2 --quiet >/dev/null
check_recall "$($CLIPC index search --index h.idx --queries q.npy --k 10 --out I.npy --gt gt_ids.npy --ef 100 --threads 1)" 0.97
$CLIPC index build --type IVF16,Flat --vectors x.npy --out ivf.idx --quiet >/dev/null
err=$($CLIPC index search --index ivf.idx --queries q.npy --k 10 --out I.npy --gt gt.npy --nprobe 99 2>&1)
echo "$err" | grep -q "note: --nprobe 99 is more than nlist = 16; using 16" || fail "no clamp note: $err"
check_recall "$err" 0.999
$CLIPC index build --type IVF16,PQ8,RFlat --vectors x.npy --out pq.idx --quiet >/dev/null
check_recall "$($CLIPC index search --index pq.idx --queries q.npy --k 10 --out I.npy --gt gt.npy --nprobe 16 --rerank 20)" 0.98
$CLIPC index build --type PQ8 --vectors x.npy --metric l2 --out pql2.idx --quiet >/dev/null
$CLIPC index search --index pql2.idx --queries q.npy --k 5 --out I.npy >/dev/null

# --- info shows type, counts, metadata
info=$($CLIPC index info h.idx)
echo "$info" | grep -q "type: *HNSW16" || fail "info: $info"
echo "$info" | grep -q "vectors: *3000" || fail "info: $info"
echo "$info" | grep -q "model = test-model" || fail "info: $info"
echo "$info" | grep -q "item texts: *yes" || fail "info: $info"

# --- tune stores the parameter in the file
out=$($CLIPC index tune --index h.idx --queries q.npy --target-recall 0.9 --threads 1)
echo "$out" | grep -q "efSearch" || fail "tune: $out"
$CLIPC index info h.idx | grep -q "search.efSearch = " || fail "tuned efSearch not stored"
out=$($CLIPC index tune --index ivf.idx --queries q.npy --target-recall 0.95)
echo "$out" | grep -q "nprobe" || fail "tune: $out"
$CLIPC index tune --index pq.idx --queries q.npy --target-recall 0.9 >/dev/null || fail "tune RFlat"
if $CLIPC index tune --index pql2.idx --queries q.npy --target-recall 0.9 >/dev/null 2>err.txt; then fail "PQ tune without vectors"; fi
grep -q "original vectors" err.txt || fail "$(cat err.txt)"

# --- add and remove
$CLIPC index add --index flat.idx --vectors more.npy >/dev/null
$CLIPC index info flat.idx | grep -q "vectors: *3005" || fail "add"
$PY -c "import numpy as np; np.save('rm.npy', np.array([0, 1, 3000, 99999], np.int64))"
out=$($CLIPC index remove --index flat.idx --ids rm.npy)
echo "$out" | grep -q "removed 3 of 4" || fail "remove: $out"
$CLIPC index search --index flat.idx --queries q.npy --k 10 --out I.npy >/dev/null
$PY -c "import numpy as np; I = np.load('I.npy'); assert not np.isin(I, [0, 1, 3000]).any()" || fail "removed ids returned"

# --- bad input: clear errors, non-zero exit, nothing written
if $CLIPC index build --type Flat --vectors bad.npy --out bad.idx 2>err.txt; then fail "NaN vectors accepted"; fi
grep -q "rows 3, 8" err.txt || fail "NaN rows not named: $(cat err.txt)"
[ ! -e bad.idx ] || fail "bad.idx written"
if $CLIPC index search --index flat.idx --queries q31.npy --k 10 --out I.npy 2>err.txt; then fail "wrong dimension accepted"; fi
grep -q "dimension 31" err.txt || fail "$(cat err.txt)"
if $CLIPC index search --index flat.idx --queries q.npy --k 5000 --out I.npy 2>err.txt; then fail "k too large accepted"; fi
grep -q "larger than the index" err.txt || fail "$(cat err.txt)"
if $CLIPC index build --type Flat --vectors x.npy --ids dup_ids.npy --out d.idx 2>err.txt; then fail "duplicate ids accepted"; fi
grep -q "more than once" err.txt || fail "$(cat err.txt)"
if $CLIPC index build --type IVF99999,Flat --vectors x.npy --out d.idx 2>err.txt; then fail "nlist > n accepted"; fi
grep -q "at least 99999" err.txt || fail "$(cat err.txt)"
if $CLIPC index build --type Foo --vectors x.npy --out d.idx 2>err.txt; then fail "bad type accepted"; fi
grep -q "unknown index type" err.txt || fail "$(cat err.txt)"

# corrupted section and truncated file
cp h.idx h_bad.idx
$PY - <<'EOF'
import struct
data = bytearray(open("h_bad.idx", "rb").read())
n_sections = struct.unpack_from("<I", data, 48)[0]
for i in range(n_sections):
    name, off, size = struct.unpack_from("<8sQQ", data, 128 + 32 * i)
    if name.rstrip(b"\0") == b"hnswl0":
        data[off + size // 2] ^= 0x10
open("h_bad.idx", "wb").write(data)
open("h_trunc.idx", "wb").write(open("h.idx", "rb").read()[:-100])
EOF
if $CLIPC index info h_bad.idx 2>err.txt; then fail "corrupted file accepted"; fi
grep -q "CRC error in section 'hnswl0'" err.txt || fail "$(cat err.txt)"
if $CLIPC index search --index h_trunc.idx --queries q.npy --k 10 --out I.npy 2>err.txt; then fail "truncated file accepted"; fi
grep -q "truncated" err.txt || fail "$(cat err.txt)"
# a failed add leaves the file as it was
cp h.idx h_before.idx
if $CLIPC index add --index h.idx --vectors bad.npy 2>/dev/null; then fail "NaN add accepted"; fi
cmp -s h.idx h_before.idx || fail "failed add changed the index file"
echo "index CLI ok"
