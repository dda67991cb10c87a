#!/bin/sh
# data_tokenize.sh — `clipc tokenize`: ids of each stdin line (golden values), an empty line gives an
# empty line, --special adds start/end, --context truncates, --decode inverts; bad usage fails.
set -eu
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
printf 'A photo of a DOG.\n\nit'"'"'s\n' > "$TMPDIR/in.txt"
"$CLIPC" tokenize --vocab "$vocab" < "$TMPDIR/in.txt" > "$TMPDIR/out.txt"
printf '320 1125 539 320 1929 269\n\n585 568\n' > "$TMPDIR/want.txt"
cmp "$TMPDIR/out.txt" "$TMPDIR/want.txt"
# --special, and truncation that keeps the end token
test "$(echo 'A photo of a DOG.' | "$CLIPC" tokenize --vocab "$vocab" --special)" = "49406 320 1125 539 320 1929 269 49407"
test "$(echo 'A photo of a DOG.' | "$CLIPC" tokenize --vocab "$vocab" --special --context 4)" = "49406 320 1125 49407"
test "$(echo '1 2 3 4 5 6 7 8 9' | "$CLIPC" tokenize --vocab "$vocab" --context 0 | wc -w)" = 9
# --decode gives back the (cleaned) text with "</w>" as spaces
test "$(echo '320 1125 539 320 1929 269' | "$CLIPC" tokenize --vocab "$vocab" --decode)" = "a photo of a dog . "
# a model directory with the .gz
mkdir -p "$TMPDIR/model"
ln -s "$vocab" "$TMPDIR/model/bpe_simple_vocab_16e6.txt.gz"
test "$(echo 'hello world' | "$CLIPC" tokenize --model "$TMPDIR/model")" = "3306 1002"
# invalid UTF-8 is replaced, not fatal
printf 'caf\303 ok\n' | "$CLIPC" tokenize --vocab "$vocab" --quiet > /dev/null
# bad usage: no vocabulary, both, missing file, a bad id to decode
if "$CLIPC" tokenize < /dev/null 2> "$TMPDIR/err"; then exit 1; fi
grep -q "vocab" "$TMPDIR/err"
if echo x | "$CLIPC" tokenize --vocab "$TMPDIR/nope.gz" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "nope.gz" "$TMPDIR/err"
if echo "1 99999999" | "$CLIPC" tokenize --vocab "$vocab" --decode 2> "$TMPDIR/err"; then exit 1; fi
grep -q "99999999" "$TMPDIR/err"
"$CLIPC" tokenize --help | grep -q -- "--special"
