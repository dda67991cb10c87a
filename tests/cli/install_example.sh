#!/bin/sh
# install_example.sh — `make install PREFIX=...` installs the binary, libclipc.a, libclipc.so, clipc.h
# and a pkg-config file; examples/embed_caption.c builds against them (the shared library, found at
# run time through the .pc file's rpath) and embeds captions.
set -eu
prefix="$TMPDIR/prefix"
make -s -C "$CLIPC_SRC" install PREFIX="$prefix" > "$TMPDIR/install.log" 2>&1 || { cat "$TMPDIR/install.log"; exit 1; }
test -x "$prefix/bin/clipc" && test -f "$prefix/lib/libclipc.a" && test -f "$prefix/include/clipc.h"
test -f "$prefix/lib/libclipc.so"
test -f "$prefix/lib/pkgconfig/clipc.pc"
"$prefix/bin/clipc" version | grep -q clipc
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc $(pkg-config --cflags clipc) "$CLIPC_SRC/examples/embed_caption.c" $(pkg-config --libs clipc) -o "$TMPDIR/embed_caption"
shared="${CLIPC_SHARED:-$CLIPC_SRC/../shared}"
/usr/bin/python3 "$CLIPC_SRC/tests/reference/clip_ref.py" make "$TMPDIR" 3 --dtypes f32 > /dev/null
ln -s "$shared/clip/bpe_simple_vocab_16e6.txt.gz" "$TMPDIR/model_f32/"
"$TMPDIR/embed_caption" "$TMPDIR/model_f32" "a photo of a dog" "a photo of a dog" > "$TMPDIR/out.txt"
grep -q "24-d embedding" "$TMPDIR/out.txt"
grep -q "cosine similarity with \"a photo of a dog\": 1.0000" "$TMPDIR/out.txt"
if "$TMPDIR/embed_caption" "$TMPDIR/nope" "x" 2> "$TMPDIR/err"; then exit 1; fi
grep -q "nope" "$TMPDIR/err"
