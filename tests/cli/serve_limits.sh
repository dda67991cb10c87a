#!/bin/sh
# serve_limits.sh — `clipc serve` under hostile clients, on 127.0.0.1 only, with a raw-socket Python client:
#   1. limits: k over --max-k and q over --max-query-bytes (400/414), a body over --max-upload-mb (413),
#      an image whose decoding would need more than --max-decode-mb (413), all as JSON errors;
#   2. an indexed file replaced by a FIFO gets a 404 at once (it used to hang every HTTP thread);
#   3. 200 connections that send half a header (more than --max-connections) and a stalled upload are
#      cut after --header-timeout / --upload-timeout, while a normal query still gets its answer;
#      requests past --max-connections get a JSON 503;
#   4. uploads stalled mid-body hold the memory budget: the next upload gets a 503 with Retry-After, and
#      once they go away uploads work again;
#   5. SIGTERM while uploads are arriving: every client gets an answer and the server exits 0.
# Every wait is bounded (counts and generous deadlines); nothing depends on how fast the machine is.
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
$CLIPC synth --out syn --count 6 --size 40 --seed "$seed" --quiet >/dev/null
$CLIPC index build --model "$model" --images syn/images --type Flat --out img.idx --quiet >/dev/null

start_server() { # name, options...: starts clipc serve, sets $pid and $port
    name=$1
    shift
    : >"$name.out"
    "$SERVER" serve --index img.idx --port 0 --quiet "$@" >"$name.out" 2>"$name.err" &
    pid=$!
    port=""
    for _ in $(seq 1 300); do
        port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$name.out")
        [ -n "$port" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "server did not start:"; cat "$name.out" "$name.err"; exit 1; }
}

stop_server() { # name: SIGTERM, the exit status must be 0 and no sanitizer report
    kill -TERM $pid
    status=0
    wait $pid || status=$?
    [ $status -eq 0 ] || { echo "$1: server exit status $status"; cat "$1.err"; exit 1; }
    if grep -q "ERROR: AddressSanitizer\|runtime error" "$1.err"; then cat "$1.err"; exit 1; fi
}

# the client library of the checks below
cat >client.py <<'EOF'
import http.client, json, os, selectors, socket, struct, sys, time, zlib

failures, n_checks = [], [0]

def check(cond, what):
    n_checks[0] += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)

def finish():
    print("%d of %d checks failed" % (len(failures), n_checks[0]) if failures else "%d checks ok" % n_checks[0])
    sys.exit(1 if failures else 0)

def req(port, method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", data, r

def is_json_error(ct, data):
    try:
        return ct.startswith("application/json") and "error" in json.loads(data)
    except ValueError:
        return False

def metric(port, name):
    text = req(port, "GET", "/metrics")[2].decode()
    return float(next(l.split()[-1] for l in text.splitlines() if l.startswith(name + " ")))

def wait_for(cond, seconds=60, step=0.05):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()

def png16_rgba(width, height):
    """A 16-bit RGBA PNG of one colour: tiny on disk, width*height*8 bytes decoded."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    row = b"\0" + b"\x40\x00\x80\x00\xc0\x00\xff\xff" * width
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)) +
            chunk(b"IDAT", idat) + chunk(b"IEND", b""))

def open_raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    if data:
        s.sendall(data)
    return s

def wait_closed(socks, seconds):
    """How many of socks the server closed (end of stream or reset) within seconds."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed, deadline = 0, time.time() + seconds
    while closed < len(socks) and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except (ConnectionResetError, OSError):
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                closed += 1
    for s in socks:
        s.close()
    return closed

def read_status(s, seconds=60):
    """Reads an HTTP response's status from a raw socket (0 when it closed without one)."""
    s.settimeout(seconds)
    reply = b""
    try:
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except (ConnectionResetError, socket.timeout, OSError):
        pass
    parts = reply.split(b" ")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), reply
EOF

# ---------------------------------------------------------------- 1-3: limits, FIFO, slow clients
fifo_target=$(ls "$PWD"/syn/images/*.png | head -n 2 | tail -n 1)
start_server limits --max-connections 64 --header-timeout 2 --upload-timeout 3 --workers 2 --max-k 20 \
    --max-query-bytes 64 --max-upload-mb 1 --max-decode-mb 16
trap 'kill -9 $pid 2>/dev/null || true' EXIT
rm "$fifo_target" && mkfifo "$fifo_target"
$PY - "$port" "$fifo_target" <<'EOF'
import sys, time
sys.path.insert(0, ".")
from client import *
port, fifo = int(sys.argv[1]), sys.argv[2]

# 1. limits
for path, want in [("/api/search?q=x&k=20", 200), ("/api/search?q=x&k=21", 400), ("/api/search?q=x&k=1000000000000", 400),
                   ("/api/search?q=" + "a" * 64, 200), ("/api/search?q=" + "a" * 65, 414)]:
    st, ct, data, _ = req(port, "GET", path)
    check(st == want and ct.startswith("application/json"), "%s -> %d (want %d)" % (path[:50], st, want))
    if want != 200:
        check(is_json_error(ct, data), "%s: JSON error %s" % (path[:50], data[:100]))
s = open_raw(port, b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000000\r\n\r\n")
st, reply = read_status(s)
s.close()
check(st == 413 and b"application/json" in reply, "body over --max-upload-mb -> %d" % st)
bomb = png16_rgba(1500, 1500)  # 18 MB to decode, over --max-decode-mb 16
st, ct, data, _ = req(port, "POST", "/api/search", bomb, {"Content-Type": "image/png"})
check(st == 413 and is_json_error(ct, data) and b"--max-decode-mb" in data, "decode over the budget -> %d %s" % (st, data[:200]))
import io
from PIL import Image
for progressive, want in [(False, 200), (True, 413)]:  # 1500 x 1500: 6.4 MB as RGB, 19 MB more while progressive
    buf = io.BytesIO()
    Image.new("RGB", (1500, 1500), (200, 40, 90)).save(buf, "JPEG", quality=90, progressive=progressive, subsampling=0)
    st, ct, data, _ = req(port, "POST", "/api/search?k=1", buf.getvalue(), {"Content-Type": "image/jpeg"})
    check(st == want, "%s JPEG of 1500 x 1500 -> %d (want %d) %s" % ("progressive" if progressive else "baseline", st, want, data[:120]))
small = png16_rgba(64, 48)
st, ct, data, _ = req(port, "POST", "/api/search?k=3", small, {"Content-Type": "image/png"})
check(st == 200 and len(json.loads(data)["results"]) == 3, "a small 16-bit upload -> %d %s" % (st, data[:200]))
check(metric(port, "clipc_memory_budget_used_bytes") == 0, "budget released after the uploads")

# 2. an indexed file that became a FIFO: an error at once, not a hang
st, ct, data, _ = req(port, "GET", "/api/search?q=x&k=20")
item = next(r["id"] for r in json.loads(data)["results"] if r["path"] == fifo)
for suffix in ["", "?thumb=1"]:
    t = time.time()
    st, ct, data, _ = req(port, "GET", "/api/item/%d%s" % (item, suffix), timeout=30)
    check(st == 404 and is_json_error(ct, data), "FIFO item%s -> %d %s" % (suffix, st, data[:100]))
check(req(port, "GET", "/healthz")[0] == 200, "healthz after the FIFO")

# 3. 200 half-header connections (the limit is 64) and a stalled upload; a normal query still succeeds
slow = [open_raw(port, b"GET /api/search?q=slow HTTP/1.1\r\nHost: x\r\n") for _ in range(200)]
stalled = open_raw(port, b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 9000\r\n\r\n" + small[:100])
t, answered = time.time(), None
while answered is None and time.time() - t < 90:
    try:
        st, ct, data, r = req(port, "GET", "/api/search?q=a+red+circle&k=2", timeout=60)
        if st == 503:  # over --max-connections: a JSON 503 with Retry-After, then try again
            check(is_json_error(ct, data) and r.getheader("Retry-After") == "1", "503 over the limit: %s" % data[:100])
            time.sleep(0.2)
            continue
        answered = st
    except (ConnectionError, OSError):
        time.sleep(0.2)  # reset while the slots were full: try again
check(answered == 200, "normal query while 200 clients stall: %s after %.1f s" % (answered, time.time() - t))
print("normal query answered after %.1f s" % (time.time() - t))
closed = wait_closed(slow + [stalled], 120)
check(closed == 201, "stalled connections cut: %d of 201" % closed)
check(metric(port, "clipc_connections_cut_total") >= 200, "cut connections counted")
check(wait_for(lambda: metric(port, "clipc_memory_budget_used_bytes") == 0), "the stalled upload's budget released")
st, ct, data, _ = req(port, "GET", "/api/search?q=after&k=2")
check(st == 200, "query after the slow clients -> %d" % st)
finish()
EOF
stop_server limits
rm "$fifo_target"

# ---------------------------------------------------------------- 3b: over --max-connections, a JSON 503
start_server conns --max-connections 4 --header-timeout 5
$PY - "$port" <<'EOF'
import sys, time
sys.path.insert(0, ".")
from client import *
port = int(sys.argv[1])
slow = [open_raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(8)]
got, deadline = None, time.time() + 60
while got is None and time.time() < deadline:  # until the server has accepted the 8 stalled connections
    st, ct, data, r = req(port, "GET", "/healthz")
    if st == 503:
        got = (st, ct, data, r)
check(got is not None and is_json_error(got[1], got[2]) and b"too many connections" in got[2], "over the limit -> 503")
check(wait_closed(slow, 60) == 8, "stalled connections cut")
check(wait_for(lambda: req(port, "GET", "/healthz")[0] == 200), "answers again once they are gone")
finish()
EOF
stop_server conns

# ---------------------------------------------------------------- 4-5: memory budget, SIGTERM during uploads
start_server budget --max-upload-mb 1 --max-decode-mb 16 --upload-timeout 600 --header-timeout 600 --workers 2 \
    --shutdown-grace 120
$PY - "$port" "$pid" <<'EOF'
import os, signal, sys, time
sys.path.insert(0, ".")
from client import *
port, server_pid = int(sys.argv[1]), int(sys.argv[2])
small = png16_rgba(64, 48)
head = b"POST /api/search?k=2 HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n"

# 4. 16 uploads stalled after 600 KB of a 1,000,000-byte body hold 16 x 1 MiB of buffer: the budget is full
body = small + b"\0" * (1000000 - len(small))
held = [open_raw(port, (head % len(body)) + body[:600000]) for _ in range(16)]
check(wait_for(lambda: metric(port, "clipc_memory_budget_used_bytes") == 16 << 20), "16 stalled uploads hold the budget")
st, ct, data, r = req(port, "POST", "/api/search", small, {"Content-Type": "image/png"})
check(st == 503 and is_json_error(ct, data) and r.getheader("Retry-After") == "1", "upload over the budget -> %d %s" % (st, data[:100]))
check(req(port, "GET", "/api/search?q=text+still+works")[0] == 200, "text queries need no budget")
for s in held:
    s.close()
check(wait_for(lambda: metric(port, "clipc_memory_budget_used_bytes") == 0), "budget released when the uploads go away")
st, ct, data, _ = req(port, "POST", "/api/search", small, {"Content-Type": "image/png"})
check(st == 200, "upload after the budget is free -> %d" % st)

# 5. SIGTERM while 8 uploads are half sent: each gets an answer once its body is in, then the server exits
uploads = [open_raw(port, (head % len(small)) + small[:len(small) // 2]) for _ in range(8)]
check(wait_for(lambda: metric(port, "clipc_requests_in_flight") >= 9), "8 uploads in flight")
os.kill(server_pid, signal.SIGTERM)
time.sleep(0.2)
for s in uploads:
    try:
        s.sendall(small[len(small) // 2:])
    except OSError:
        pass
statuses = []
for s in uploads:
    statuses.append(read_status(s)[0])
    s.close()
check(all(st in (200, 503) for st in statuses), "every upload answered on SIGTERM: %s" % statuses)
finish()
EOF
status=0
wait $pid || status=$?
trap - EXIT
[ $status -eq 0 ] || { echo "server exit status $status after SIGTERM"; cat budget.err; exit 1; }
grep -q "terminated, stopping" budget.err || { cat budget.err; exit 1; }
if grep -q "ERROR: AddressSanitizer\|runtime error" budget.err; then cat budget.err; exit 1; fi
echo "serve limits ok"
