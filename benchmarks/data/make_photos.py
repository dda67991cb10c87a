#!/usr/bin/python3
"""make_photos.py — photo-like test JPEGs for the preprocessing benchmark (no downloads): multi-scale
smooth random fields (large shapes, mid texture, fine grain) with a little sensor noise, so that the
JPEG entropy and the resize see content like a photograph's rather than flat colour or pure noise.

usage: make_photos.py OUTDIR SEED WxH[:QUALITY] ...   (writes OUTDIR/photo_WxH.jpg)
"""
import os
import sys

import numpy as np
from PIL import Image


def field(rng, w, h, cell):
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    grid = Image.fromarray((rng.random((gh, gw, 3)) * 255).astype(np.uint8))
    return np.asarray(grid.resize((w, h), Image.BICUBIC), dtype=np.float32)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    outdir, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(seed)
    os.makedirs(outdir, exist_ok=True)
    for spec in sys.argv[3:]:
        dims, _, quality = spec.partition(":")
        w, h = (int(v) for v in dims.split("x"))
        img = 0.6 * field(rng, w, h, max(w, h) // 6) + 0.3 * field(rng, w, h, 24) + 0.1 * field(rng, w, h, 4)
        img += rng.normal(0, 3, img.shape)
        out = os.path.join(outdir, f"photo_{w}x{h}.jpg")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(out, quality=int(quality or 90))
        print(out)


if __name__ == "__main__":
    main()
