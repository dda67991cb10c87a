#!/bin/sh
# run.sh — `make test-browser`: clipc serve's web page in headless Chromium. Builds a random model and a
# synthetic image index, starts `clipc serve` on a free loopback port, runs tests/browser/page_test.js
# (playwright-core driving Debian's /usr/bin/chromium; installed from npm into build/test-browser on
# first use) and leaves the screenshot in build/test-browser/screenshot.png. Not part of `make test`.
# Needs: chromium (scripts/install-deps.sh --browser), node and npm.
set -eu
cd "$(dirname "$0")/../.."
src=$(pwd)
out="$src/build/test-browser"
clipc="$src/build/clipc"
shared="${CLIPC_SHARED:-$src/../shared}"
PLAYWRIGHT_VERSION=1.65.1
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { echo "test-browser: $CHROMIUM not found (scripts/install-deps.sh --browser installs Debian's chromium)"; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "test-browser: node and npm are needed"; exit 1; }
mkdir -p "$out"
if [ ! -f "$out/node_modules/playwright-core/package.json" ]; then
    echo "test-browser: installing playwright-core $PLAYWRIGHT_VERSION into $out"
    (cd "$out" && npm install --no-audit --no-fund --no-save "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null)
fi
export PLAYWRIGHT_DIR="$out"
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
/usr/bin/python3 "$src/tests/reference/clip_ref.py" make "$tmp" "$seed" --dtypes f32 --n-images 1 --n-texts 1 >/dev/null
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$tmp/model_f32/"
"$clipc" synth --out "$tmp/syn" --count 24 --size 160 --seed "$seed" --jpeg --quiet >/dev/null
"$clipc" index build --model "$tmp/model_f32" --images "$tmp/syn/images" --type Flat --out "$tmp/img.idx" --quiet
: >"$tmp/serve.out"
"$clipc" serve --index "$tmp/img.idx" --port 0 --quiet >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
port=""
for _ in $(seq 1 200); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { echo "test-browser: the server did not start"; cat "$tmp/serve.err"; exit 1; }
probe=$(cd "$tmp/syn/images" && pwd -P)/000007.jpg
rm -f "$out/screenshot.png"
node "$src/tests/browser/page_test.js" "http://127.0.0.1:$port/" "$probe" "$out/screenshot.png"
[ -s "$out/screenshot.png" ] || { echo "test-browser: no screenshot"; exit 1; }
echo "test-browser: screenshot in $out/screenshot.png"
