#!/usr/bin/python3
"""preprocess_ref.py — the PIL + numpy peer of bench_preprocess: openai/CLIP's _transform with PIL only
(Image.open from bytes, Resize(S, BICUBIC) = shorter side to S with int(S * long / short), CenterCrop with
int(round(...)), convert("RGB"), /255 in float32, (x - mean) / std, HWC -> CHW), one thread.

usage: preprocess_ref.py [--size S] [--repeats N] FILE...
prints per file: FILE WxH decode_ms preprocess_ms total_ms (best of N after a warm-up), like the C one.
"""
import io
import sys
import time

import numpy as np
from PIL import Image

MEAN = np.array((0.48145466, 0.4578275, 0.40821073), np.float32)
STD = np.array((0.26862954, 0.26130258, 0.27577711), np.float32)


def transform(im, size):
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BICUBIC)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    im = im.crop((left, top, left + size, top + size)).convert("RGB")
    x = np.asarray(im, dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(((x - MEAN) / STD).transpose(2, 0, 1))


def main():
    args = sys.argv[1:]
    size, repeats = 224, 20
    while args and args[0].startswith("--"):
        if args[0] == "--size":
            size = int(args[1])
        elif args[0] == "--repeats":
            repeats = int(args[1])
        else:
            sys.exit(__doc__)
        args = args[2:]
    for path in args:
        with open(path, "rb") as f:
            data = f.read()
        best = [1e9, 1e9, 1e9]
        for r in range(repeats + 1):
            t0 = time.perf_counter()
            im = Image.open(io.BytesIO(data))
            im.load()
            t1 = time.perf_counter()
            transform(im, size)
            t2 = time.perf_counter()
            if r:
                best = [min(best[0], t1 - t0), min(best[1], t2 - t1), min(best[2], t2 - t0)]
        print(f"{path} {im.size[0]}x{im.size[1]} {1e3 * best[0]:.3f} {1e3 * best[1]:.3f} {1e3 * best[2]:.3f}")


if __name__ == "__main__":
    main()
