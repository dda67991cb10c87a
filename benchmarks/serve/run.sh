#!/bin/sh
# run.sh — `clipc serve` latency and load, written to benchmarks/out/serve.md:
#   a 100k-item HNSW32 index of random unit vectors (dim 512, fake paths) served with a random-weight
#   ViT-B/32 model (tests/reference/clip_ref.py make --arch b32; same shapes and cost as the real one);
#   1. sequential text->image queries over HTTP (one keep-alive connection, k = 10): latency p50/p95/p99
#      measured by the client, so text encoding, search, JSON and HTTP are all included;
#   2. 50 concurrent clients for 30 s: queries/s, errors, latency percentiles;
#   3. for the breakdown, the text tower alone in process (text_tower.c: one query, and batches of 16)
#      and the HNSW search alone (clipc index search, one thread).
# Queries are synthetic captions cut to 2-12 words (clipc synth), all different. Needs build/clipc,
# build/bench/serve/load (make bench-bins) and ../shared (the CLIP vocabulary).
# Environment: ROUNDS (default 2; sequential runs, the best p50 reported, all listed), SECONDS_LOAD (30),
# CLIENTS (50), N_ITEMS (100000), BENCH_TMP (scratch directory; default a fresh one, removed).
cd "$(dirname "$0")/../.." || exit 2
out=benchmarks/out/serve.md
mkdir -p benchmarks/out
py=/usr/bin/python3
load=build/bench/serve/load
tower=build/bench/serve/text_tower
shared="${CLIPC_SHARED:-../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
for f in build/clipc "$load" "$tower" "$vocab"; do
    [ -e "$f" ] || { echo "serve benchmark: missing $f (run make all bench-bins; ../shared is needed)" >&2; exit 1; }
done
ROUNDS=${ROUNDS:-2}
SECONDS_LOAD=${SECONDS_LOAD:-30}
CLIENTS=${CLIENTS:-50}
N_ITEMS=${N_ITEMS:-100000}
N_SEQ=${N_SEQ:-1000}
cores=$(nproc)
if [ -n "${BENCH_TMP:-}" ]; then tmp=$BENCH_TMP; mkdir -p "$tmp"; else tmp=$(mktemp -d); fi
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    [ -n "${BENCH_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

echo "serve benchmark: model, $N_ITEMS vectors, index (in $tmp)"
if [ ! -f "$tmp/model_f32/model.safetensors" ]; then
    $py tests/reference/clip_ref.py make "$tmp" 7 --arch b32 --dtypes f32 --n-images 1 --n-texts 1 >/dev/null || exit 1
    ln -sf "$(cd "$(dirname "$vocab")" && pwd)/$(basename "$vocab")" "$tmp/model_f32/"
fi
if [ "$(cat "$tmp/built_for" 2>/dev/null)" != "$N_ITEMS" ]; then # BENCH_TMP keeps a built index for re-runs
$py - "$tmp" "$N_ITEMS" <<'EOF' || exit 1
import sys, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(2024)
x = rng.standard_normal((n, 512)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
np.save(f"{d}/x.npy", x)
q = rng.standard_normal((1000, 512)).astype(np.float32)
np.save(f"{d}/q.npy", q / np.linalg.norm(q, axis=1, keepdims=True))
with open(f"{d}/paths.txt", "w") as f:
    for i in range(n):
        f.write(f"/photos/{i // 1000:03d}/{i:06d}.jpg\n")
EOF
build/clipc synth --out "$tmp/synth" --count 3000 --size 8 --quiet >/dev/null
$py - "$tmp" <<'EOF' || exit 1
import random, sys
d = sys.argv[1]
rng = random.Random(5)
caps = [l.split("\t")[1].strip() for l in list(open(f"{d}/synth/pairs.tsv"))[1:]]
seen, out = set(), []
for c in caps:
    words = c.split()
    q = " ".join(words[: rng.randint(2, min(12, len(words)))])
    if q not in seen:
        seen.add(q)
        out.append(q)
rng.shuffle(out)
open(f"{d}/queries.txt", "w").write("\n".join(out) + "\n")
EOF
t0=$(date +%s)
build/clipc index build --type HNSW32 --vectors "$tmp/x.npy" --texts "$tmp/paths.txt" --ef-construction 100 \
    --out "$tmp/bench.idx" --quiet >"$tmp/build.txt" || exit 1
echo $(($(date +%s) - t0)) >"$tmp/build_s"
echo "$N_ITEMS" >"$tmp/built_for"
fi
build_s=$(cat "$tmp/build_s")
search_line=$(build/clipc index search --index "$tmp/bench.idx" --queries "$tmp/q.npy" --k 10 --out "$tmp/I.npy" \
    --threads 1 --repeat 3)
search_qps=$(echo "$search_line" | sed -n 's/.*s: \([0-9.]*\) queries\/s.*/\1/p')
n_queries=$(wc -l <"$tmp/queries.txt")
load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "serve benchmark: text tower alone"
towerline=$(OMP_WAIT_POLICY=passive $tower "$tmp/model_f32" "$tmp/queries.txt" 300)
echo "  $towerline"

: >"$tmp/serve.out"
build/clipc serve --index "$tmp/bench.idx" --model "$tmp/model_f32" --port 0 --quiet >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
port=""
for _ in $(seq 1 600); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { echo "serve benchmark: the server did not start" >&2; cat "$tmp/serve.err" >&2; exit 1; }
echo "serve benchmark: warm-up, then $ROUNDS x $N_SEQ sequential queries"
$load sequential 127.0.0.1 "$port" "$tmp/queries.txt" 100 10 >/dev/null
field() { echo " $1" | sed -n "s/.* $2 \([0-9.na]*\).*/\1/p"; }
best=""
rounds=""
for r in $(seq 1 "$ROUNDS"); do
    line=$($load sequential 127.0.0.1 "$port" "$tmp/queries.txt" "$N_SEQ" 10)
    echo "  round $r: $line"
    rounds="$rounds
| $r | $(field "$line" ok) | $(field "$line" errors) | $(field "$line" p50_ms) | $(field "$line" p95_ms) | $(field "$line" p99_ms) | $(field "$line" max_ms) |"
    if [ -z "$best" ] || awk -v a="$(field "$line" p50_ms)" -v b="$(field "$best" p50_ms)" 'BEGIN { exit !(a < b) }'; then best=$line; fi
done
echo "serve benchmark: $CLIENTS clients for $SECONDS_LOAD s"
loadline=$($load concurrent 127.0.0.1 "$port" "$tmp/queries.txt" "$CLIENTS" "$SECONDS_LOAD" 10)
echo "  $loadline"
metrics=$($py -c "
import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())")
batches=$(echo "$metrics" | sed -n 's/^clipc_model_batches_total \(.*\)/\1/p')
batched=$(echo "$metrics" | sed -n 's/^clipc_model_batched_queries_total \(.*\)/\1/p')
rss=$(echo "$metrics" | sed -n 's/^clipc_resident_memory_bytes \(.*\)/\1/p')
kill "$pid"
wait "$pid" 2>/dev/null
pid=""
load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)

{
    echo "## Search server (clipc serve): text->image latency and load"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores"
    echo "(the load client runs on the same cores); command: \`benchmarks/serve/run.sh\`. Load average before the"
    echo "run $load_before, after it $load_after (other work on the machine shows here; the figures are only as quiet"
    echo "as the machine was)."
    echo
    echo "Index: HNSW32 (efConstruction 100, default efSearch 64) over $N_ITEMS random unit vectors of dimension 512"
    echo "with fake paths, built in ${build_s} s. Model: ViT-B/32 shapes with random weights (text tower: 12 layers,"
    echo "width 512, 77 tokens), f32 on the CPU, default threads ($cores). Queries: $n_queries distinct synthetic captions"
    echo "of 2-12 words, k = 10, over HTTP/1.1 keep-alive; latency is measured by the client from sending the"
    echo "request to the last byte of the JSON reply, so it includes tokenizing, the text tower, the HNSW search,"
    echo "the JSON and the HTTP round trip."
    echo
    echo "### Sequential queries (one client)"
    echo
    echo "| round | ok | errors | p50 ms | p95 ms | p99 ms | max ms |"
    echo "|---|---|---|---|---|---|---|$rounds"
    echo
    echo "Best round: p50 $(field "$best" p50_ms) ms, p95 $(field "$best" p95_ms) ms, p99 $(field "$best" p99_ms) ms"
    echo "(target on 2 cores: p50 <= 15 ms, p99 <= 50 ms)."
    echo
    echo "Breakdown: the text tower alone (tokenizer + 12 layers, in process, \`text_tower.c\`) takes p50"
    echo "$(field "$towerline" p50_ms) ms (p99 $(field "$towerline" p99_ms) ms) per single query, and $(field "$towerline" batch16_ms_per_query) ms per query in batches of 16; the HNSW"
    echo "search alone runs at $search_qps queries/s on one thread (\`clipc index search --threads 1\`). The text tower"
    echo "dominates: at batch 1 its matrix products stream all 38M text weights (150 MB in f32) from memory per query."
    echo
    echo "### $CLIENTS concurrent clients, $SECONDS_LOAD s"
    echo
    echo "| requests | ok | errors | queries/s | p50 ms | p95 ms | p99 ms | max ms |"
    echo "|---|---|---|---|---|---|---|---|"
    echo "| $(field "$loadline" requests) | $(field "$loadline" ok) | $(field "$loadline" errors) | $(field "$loadline" qps) | $(field "$loadline" p50_ms) | $(field "$loadline" p95_ms) | $(field "$loadline" p99_ms) | $(field "$loadline" max_ms) |"
    echo
    echo "With $CLIENTS clients each waiting for its answer before asking again, latency is about clients / throughput"
    echo "(Little's law). The engine embedded $batched queries in $batches forward passes over the whole run (text"
    echo "queries waiting together are batched, at most 16 per pass). Server resident memory at the end:"
    echo "$((rss / 1048576)) MiB (model weights mapped from the safetensors file, index mapped from its file)."
} >"$out"
echo "wrote $out"
