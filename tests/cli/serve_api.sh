#!/bin/sh
# serve_api.sh — `clipc serve` on loopback, driven by a Python http.client / raw-socket client: the
# API (text and image search, items, thumbnails, page, metrics, health), the bad inputs of the issue
# (path traversal, oversized and non-image uploads, malformed query strings, k = 0 or 10^9, bad
# methods), concurrent queries (batched results equal sequential ones), index reload while serving
# (a rebuilt index is picked up, a damaged file is ignored, no query fails meanwhile), and a clean stop.
# The server runs from the ASan+UBSan build when it exists (make test builds it), else the release one.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
PY=/usr/bin/python3
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
cd "$TMPDIR"
SERVER="$CLIPC"
[ -x "$CLIPC_SRC/build-asan/clipc" ] && SERVER="$CLIPC_SRC/build-asan/clipc"
$PY "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" "$seed" --dtypes f32 --n-images 1 --n-texts 1 >/dev/null
model="$TMPDIR/model_f32"
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$model/"
$CLIPC synth --out syn --count 12 --size 40 --seed "$seed" --quiet >/dev/null
$CLIPC synth --out big --count 1 --size 600 --seed "$seed" --jpeg --quiet >/dev/null
cp big/images/000000.jpg syn/images/big.jpg # thumbnails must shrink this one
$CLIPC synth --out more --count 5 --size 40 --seed "$((seed + 7))" --quiet >/dev/null
# Flat where exact answers are checked (HNSW is approximate); the index rebuilt while serving is HNSW
$CLIPC index build --model "$model" --images syn/images --type Flat --out img.idx --quiet >/dev/null
cp img.idx first.idx
mkdir all && cp syn/images/* all/
for f in more/images/*.png; do cp "$f" "all/more_$(basename "$f")"; done
$CLIPC index build --model "$model" --images all --type Flat --out second.idx --quiet >/dev/null

: >serve.out
"$SERVER" serve --index img.idx --port 0 --reload-interval 200 --workers 3 --max-upload-mb 1 --quiet >serve.out 2>serve.err &
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

$PY - "$port" "$PWD" "$CLIPC" "$model" <<'EOF'
import http.client, io, json, os, shutil, socket, subprocess, sys, threading, time
from PIL import Image

port, root, clipc, model = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.chdir(root)
failures = []
n_checks = [0]

def check(cond, what):
    n_checks[0] += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)

def req(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", data

def raw(data):
    """Sends raw bytes, returns the status code of the reply (0 if the connection closed silently)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(data)
        reply = b""
        while b"\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    except (ConnectionResetError, BrokenPipeError):
        return 0
    finally:
        s.close()
    parts = reply.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

def multipart(fields):
    boundary = "clipcboundary%d" % os.getpid()
    out = io.BytesIO()
    for name, filename, ctype, data in fields:
        out.write(b"--%s\r\n" % boundary.encode())
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        out.write(b"Content-Disposition: %s\r\n" % disp.encode())
        if ctype:
            out.write(b"Content-Type: %s\r\n" % ctype.encode())
        out.write(b"\r\n" + data + b"\r\n")
    out.write(b"--%s--\r\n" % boundary.encode())
    return out.getvalue(), "multipart/form-data; boundary=" + boundary

def search(q, k=5):
    st, ct, data = req("GET", "/api/search?q=%s&k=%d" % (q.replace(" ", "+"), k))
    return st, (json.loads(data) if ct.startswith("application/json") else None)

# ---- health, page, metrics
st, ct, data = req("GET", "/healthz")
health = json.loads(data)
check(st == 200 and health["items"] == 13 and health["kind"] == "images" and health["generation"] == 1, "healthz %s" % data)
st, ct, data = req("GET", "/")
check(st == 200 and ct.startswith("text/html") and b"<title>clipc search</title>" in data, "page")
check(b'src="http' not in data and b'href="http' not in data and b"cdn" not in data.lower(), "page loads nothing external")

# ---- text search
st, doc = search("a large red circle", 5)
check(st == 200 and [r["rank"] for r in doc["results"]] == [1, 2, 3, 4, 5], "text search %s" % doc)
check(all(set(r) >= {"rank", "score", "id", "path"} for r in doc["results"]), "result keys")
scores = [r["score"] for r in doc["results"]]
check(scores == sorted(scores, reverse=True), "scores sorted")
st, ct, data = req("GET", "/api/search?q=blue")
check(st == 200 and len(json.loads(data)["results"]) == 10, "default k = 10")
st, doc = search("green", 100)
check(st == 200 and len(doc["results"]) == 13, "k = 100 on 13 items")

# ---- filter= (index/filter.h): applied in the search; a bad one is a 400 naming the clause
st, full = search("green", 13)
st2, ct, data = req("GET", "/api/search?q=green&k=5&filter=id%3D1%7C4%7C9")
doc = json.loads(data) if ct.startswith("application/json") else {}
want = [r["id"] for r in full["results"] if r["id"] in (1, 4, 9)]
check(st2 == 200 and [r["id"] for r in doc.get("results", [])] == want and doc["query"].get("filter") == "id=1|4|9",
      "filter=id list %s" % data[:300])
st, ct, data = req("GET", "/api/search?q=green&filter=colour%3Dred")
check(st == 400 and b"colour=red" in data, "bad filter= %d %s" % (st, data[:200]))
st, ct, data = req("GET", "/api/search?q=green&filter=time%3E%3D2024-01-01")
check(st == 200 and json.loads(data)["results"] == [], "time filter on an index without timestamps: %s" % data[:200])

# ---- image search: multipart and raw body; an indexed image finds itself
probe = os.path.realpath("syn/images/000005.png")
png = open(probe, "rb").read()
body, ctype = multipart([("k", None, None, b"3"), ("image", "q.png", "image/png", png)])
st, ct, data = req("POST", "/api/search", body, {"Content-Type": ctype})
doc = json.loads(data)
check(st == 200 and len(doc["results"]) == 3 and doc["results"][0]["path"] == probe and doc["results"][0]["score"] >= 0.9999,
      "image search %s" % data[:300])
st, ct, data = req("POST", "/api/search?k=2", png, {"Content-Type": "image/png"})
doc = json.loads(data)
check(st == 200 and len(doc["results"]) == 2 and doc["results"][0]["path"] == probe, "raw image body %s" % data[:300])

# ---- items and thumbnails: only files recorded in the index
st, doc = search("x", 100)
by_path = {r["path"]: r["id"] for r in doc["results"]}
pid = by_path[probe]
st, ct, data = req("GET", "/api/item/%d" % pid)
check(st == 200 and ct == "image/png" and data == png, "original bytes")
big = os.path.realpath("syn/images/big.jpg")
st, ct, data = req("GET", "/api/item/%d?thumb=1" % by_path[big])
thumb = Image.open(io.BytesIO(data)) if st == 200 else None
check(st == 200 and ct == "image/jpeg" and thumb.format == "JPEG" and max(thumb.size) == 256, "thumbnail %s %s" % (st, thumb and thumb.size))
st, ct, data = req("GET", "/api/item/%d?thumb=1" % by_path[big])
check(st == 200 and Image.open(io.BytesIO(data)).size == thumb.size, "cached thumbnail")
st, ct, data = req("GET", "/api/item/%d?thumb=1" % pid)
check(st == 200 and Image.open(io.BytesIO(data)).size == (40, 40), "small image thumbnail keeps its size")
for path in ["/api/item/../../../../etc/passwd", "/api/item/..%2f..%2f..%2fetc%2fpasswd", "/api/item/%2e%2e/%2e%2e/etc/passwd",
             "/api/item/-1", "/api/item/1abc", "/api/item/", "/api/item/99999999", "/api/item/0/../../../etc/passwd",
             "/../../../etc/passwd", "/etc/passwd", "/api/item/%00", "/api/item/99999999999999999999999"]:
    st, ct, data = req("GET", path)
    check(st in (400, 404) and b"root:" not in data, "traversal %s -> %d" % (path, st))

# ---- uploads: size, type and content limits
check(raw(b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 20000000\r\n\r\n") == 413,
      "oversized upload (Content-Length) is a 413 before the body")
big_body, ctype = multipart([("image", "big.png", "image/png", os.urandom(1_200_000))])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.putrequest("POST", "/api/search")
c.putheader("Content-Type", ctype)
c.putheader("Transfer-Encoding", "chunked")
c.endheaders()
try:
    for i in range(0, len(big_body), 65536):
        chunk = big_body[i:i + 65536]
        c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    c.send(b"0\r\n\r\n")
    st = c.getresponse().status
except (ConnectionResetError, BrokenPipeError):
    st = 0
c.close()
check(st == 413, "oversized chunked upload -> %d" % st)
for fields, want, what in [
        ([("image", "a.png", "image/png", b"hello, not an image")], 415, "text as image"),
        ([("image", "a.png", "image/png", png[:60])], 415, "truncated PNG"),
        ([("file", "a.png", "image/png", png)], 400, "no image field"),
        ([("image", "a.png", "image/png", png), ("k", None, None, b"0")], 400, "k = 0 in the form")]:
    body, ctype = multipart(fields)
    st, ct, data = req("POST", "/api/search", body, {"Content-Type": ctype})
    check(st == want and "error" in json.loads(data), "%s -> %d %s" % (what, st, data[:200]))
st, ct, data = req("POST", "/api/search", b"hello", {"Content-Type": "text/plain"})
check(st == 415, "text/plain upload -> %d" % st)
st, ct, data = req("POST", "/api/search", b"--x\r\ngarbage", {"Content-Type": "multipart/form-data; boundary=x"})
check(st == 400, "malformed multipart -> %d" % st)

# ---- query strings
for path, want in [("/api/search", 400), ("/api/search?q=", 400), ("/api/search?k=5", 400),
                   ("/api/search?q=%FF%FE", 400), ("/api/search?q=a%00b", 400), ("/api/search?q=" + "a" * 2000, 414),
                   ("/api/search?q=x&k=0", 400), ("/api/search?q=x&k=101", 400), ("/api/search?q=x&k=1000000000", 400),
                   ("/api/search?q=x&k=abc", 400), ("/api/search?q=x&k=-1", 400), ("/api/search?q=x&k=1.5", 400),
                   ("/api/search?q=x&k=", 400), ("/api/search?q=x&decay=-1", 400), ("/api/search?q=x&decay=nan", 400),
                   ("/api/search?q=x&k=100", 200), ("/api/search?q=x&decay=0.5", 200), ("/api/search?q=%ZZ%&k=3", 200),
                   ("/api/search?&&=&q=x&=&k=2", 200), ("/api/search?q=caf%C3%A9+%E2%9C%93", 200)]:
    st, ct, data = req("GET", path)
    check(st == want and ct == "application/json", "%s -> %d (want %d)" % (path[:60], st, want))
st = raw(b"GET /api/search?q=" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
check(st in (400, 413, 414, 431), "100 KB request line -> %d" % st)
for method, path in [("DELETE", "/api/search"), ("PUT", "/api/item/0"), ("POST", "/healthz")]:
    st, ct, data = req(method, path, b"")
    check(st == 405, "%s %s -> %d" % (method, path, st))

# ---- concurrent queries: batched results equal sequential ones
queries = ["a red circle", "two blue squares on a white background", "star", "a small green hexagon at the top",
           "yellow", "a large pink cross to the left of a small yellow star on a gray background", "cat", "purple diamond"]
expected = {q: search(q, 7)[1]["results"] for q in queries}
errors = []
def worker(i):
    for j in range(6):
        q = queries[(i + j) % len(queries)]
        st, doc = search(q, 7)
        if st != 200:
            errors.append((q, st))
            continue
        got = doc["results"]
        if [r["id"] for r in got] != [r["id"] for r in expected[q]] or \
           any(abs(a["score"] - b["score"]) > 1e-4 for a, b in zip(got, expected[q])):
            errors.append((q, "different results"))
threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
check(not errors, "concurrent queries: %s" % errors[:3])
st, ct, data = req("GET", "/metrics")
text = data.decode()
check(st == 200 and ct.startswith("text/plain"), "metrics")
for key in ['clipc_search_latency_seconds{quantile="0.99"}', 'clipc_queries_total{kind="text"}', "clipc_resident_memory_bytes",
            "clipc_index_items 13"]:
    check(key in text, "metrics has %s" % key)
def metric(name):
    return float(next(l.split()[-1] for l in text.splitlines() if l.startswith(name + " ")))
n_text = metric('clipc_queries_total{kind="text"}')
check(n_text >= 16 * 6 + len(queries), "text query count %d" % n_text)
batches, batched = metric("clipc_model_batches_total"), metric("clipc_model_batched_queries_total")
print("engine: %d queries in %d forward passes" % (batched, batches))
check(metric('clipc_search_latency_seconds{quantile="0.99"}') > 0, "p99 latency")

# ---- reload while serving: queries run throughout and none may fail
stop = threading.Event()
loop_errors, loop_count = [], [0]
def query_loop():
    i = 0
    while not stop.is_set():
        st, doc = search(queries[i % len(queries)], 5)
        i += 1
        if st != 200 or len(doc["results"]) != 5:
            loop_errors.append(st)
        loop_count[0] += 1
loopers = [threading.Thread(target=query_loop) for _ in range(3)]
[t.start() for t in loopers]

def wait_generation(gen, items, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        h = json.loads(req("GET", "/healthz")[2])
        if h["generation"] == gen and h["items"] == items:
            return True
        time.sleep(0.1)
    return False

shutil.copy("second.idx", "tmp.idx")
os.replace("tmp.idx", "img.idx")  # a complete new file appears by rename, as clipc index build writes it
check(wait_generation(2, 18), "rebuilt index picked up")
st, doc = search("x", 100)
check(st == 200 and len(doc["results"]) == 18, "new items served")
# a damaged file (truncated) is ignored: the previous index keeps serving
data = open("first.idx", "rb").read()
open("tmp.idx", "wb").write(data[:-1000])
os.replace("tmp.idx", "img.idx")
time.sleep(1.0)
h = json.loads(req("GET", "/healthz")[2])
check(h["generation"] == 2 and h["items"] == 18, "damaged file ignored: %s" % h)
# the index rebuilt in place by clipc itself (an atomic rename at the end) is picked up
subprocess.run([clipc, "index", "build", "--model", model, "--images", "syn/images", "--type", "HNSW16", "--out", "img.idx",
                "--quiet", "--no-cache"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
check(wait_generation(3, 13), "index rebuilt by clipc index build picked up")
stop.set()
[t.join() for t in loopers]
check(not loop_errors and loop_count[0] > 10, "queries during reloads: %d failed of %d" % (len(loop_errors), loop_count[0]))
st, ct, data = req("GET", "/metrics")
check("clipc_index_reloads_total 2" in data.decode() and "clipc_index_reload_failures_total 1" in data.decode(), "reload metrics")

print("%d of %d checks failed" % (len(failures), n_checks[0]) if failures else "serve API ok (%d checks)" % n_checks[0])
sys.exit(1 if failures else 0)
EOF
grep -q "still serving the previous index" serve.err || { echo "damaged index not logged:"; cat serve.err; exit 1; }
kill -TERM $pid
status=0
wait $pid || status=$?
trap - EXIT
[ $status -eq 0 ] || { echo "server exit status $status"; cat serve.err; exit 1; }
grep -q "ERROR: AddressSanitizer\|runtime error" serve.err && { cat serve.err; exit 1; }
echo "serve ok"
