#!/usr/bin/python3
"""data_image_ref.py — the PIL reference for clipc's image decoding and CLIP preprocessing tests.

usage: data_image_ref.py make OUTDIR SEED
  Writes test images of many sizes and PNG/JPEG kinds (random smooth content + noise, random alpha),
  then for each image what PIL 9.4 gives:
    NAME.rgb.npy              Image.open(f).convert("RGB"), uint8 [H, W, 3]
    NAME.S.openai_u8.npy      openai/CLIP _transform up to the 8-bit crop: Resize(S, BICUBIC) on the
                              image in its own mode, CenterCrop (int(round(...))), convert("RGB")
    NAME.S.openai.npy         ... then ToTensor + Normalize in float32, [3, C, C]
    NAME.S.hf_u8.npy / .hf.npy  Hugging Face CLIPImageProcessor: convert("RGB") first, resize, crop
                              with (h - c) // 2, rescale in float64 -> float32, normalize
  and OUTDIR/manifest.tsv: name, file, size S, crop C, PIL mode.
The PNG kinds PIL cannot write (2/4-bit gray, interlaced, 16-bit gray+alpha, ...) are written by the
small PNG writer below; PIL is the one that reads them back as the reference.
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

MEAN = np.array((0.48145466, 0.4578275, 0.40821073), np.float32)
STD = np.array((0.26862954, 0.26130258, 0.27577711), np.float32)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """samples: 1-D integer array of one row (all channels interleaved)."""
    if bit_depth == 16:
        return samples.astype(">u2").tobytes()
    if bit_depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    out = bytearray((len(samples) + per_byte - 1) // per_byte)
    for i, v in enumerate(samples):
        out[i // per_byte] |= int(v) << (8 - bit_depth * (i % per_byte + 1))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, bit_depth, palette=None, interlace=False, trns=None):
    """samples: uint array [H, W, C]; writes a PNG with filter 0 rows."""
    h, w = samples.shape[:2]
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for xs, ys, dx, dy in passes:
        sub = samples[ys::dy, xs::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\x00" + pack_row(row.reshape(-1), bit_depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        data += png_chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(bytes(raw), 6)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def smooth_noise(rng, h, w, c, maxval=255):
    """Smooth random field plus noise, scaled to 0..maxval (resampling has something to do)."""
    gh, gw = max(2, h // 6 + 1), max(2, w // 6 + 1)
    grid = rng.random((gh, gw, c))
    ys = np.linspace(0, gh - 1, h)
    xs = np.linspace(0, gw - 1, w)
    y0 = np.floor(ys).astype(int).clip(0, gh - 2)
    x0 = np.floor(xs).astype(int).clip(0, gw - 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    field = (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy
    field = field + rng.normal(0, 0.08, field.shape)
    return np.clip(np.round(field * maxval), 0, maxval).astype(np.int64)


def resized_size(size, w, h):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    return (size, new_long) if w <= h else (new_long, size)


def openai_u8(im, size, crop):
    new_w, new_h = resized_size(size, *im.size)
    if (new_w, new_h) != im.size:
        im = im.resize((new_w, new_h), Image.BICUBIC)
    w, h = im.size
    if crop > w or crop > h:  # torchvision pads with fill 0, (crop - size) // 2 on the left / top
        left = (crop - w) // 2 if crop > w else 0
        top = (crop - h) // 2 if crop > h else 0
        padded = Image.new(im.mode, (max(w, crop) if crop > w else w, max(h, crop) if crop > h else h), 0)
        padded.paste(im, (left, top))
        im = padded
        w, h = im.size
    left = int(round((w - crop) / 2.0))
    top = int(round((h - crop) / 2.0))
    im = im.crop((left, top, left + crop, top + crop))
    return np.asarray(im.convert("RGB"))


def hf_u8(im, size, crop):
    arr = np.asarray(im.convert("RGB"))
    h, w = arr.shape[:2]
    new_w, new_h = resized_size(size, w, h)
    arr = np.asarray(Image.fromarray(arr).resize((new_w, new_h), Image.BICUBIC, reducing_gap=None))
    h, w = arr.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    if crop > h or crop > w:
        nh, nw = max(h, crop), max(w, crop)
        padded = np.zeros((nh, nw, 3), np.uint8)
        tp, lp = -(-(nh - h) // 2), -(-(nw - w) // 2)
        padded[tp:tp + h, lp:lp + w] = arr
        top, left = top + tp, left + lp
        arr = padded[max(0, top):max(0, top) + crop, max(0, left):max(0, left) + crop]
        return arr
    return arr[top:top + crop, left:left + crop]


def openai_float(u8):
    x = u8.astype(np.float32) / np.float32(255)
    return ((x - MEAN) / STD).transpose(2, 0, 1).copy()


def hf_float(u8):
    x = (u8.astype(np.float64) * (1 / 255)).astype(np.float32)
    return ((x - MEAN) / STD).transpose(2, 0, 1).copy()


def make_images(outdir, rng):
    """Yields (name, path) of the test images it writes."""
    sizes = [(5, 3), (3, 5), (1, 1), (2, 2), (7, 7), (31, 17), (224, 224), (225, 224), (224, 226), (300, 200),
             (200, 301), (257, 163), (641, 479), (1000, 101), (101, 700), (96, 64), (64, 96), (333, 334)]
    kinds = ["rgb_png", "rgb_jpg", "l_png", "p_png", "rgba_png", "la_png", "rgb16_png", "i16_png", "l2_png",
             "l4_png", "bit1_png", "p4_png", "rgba16_png", "la16_png", "interlaced_rgb_png", "interlaced_p2_png",
             "l_jpg", "cmyk_jpg", "jpg444", "jpg422", "progressive_jpg", "exif_rotated_jpg", "trns_rgb_png"]
    # every kind at a few sizes, every size in a few kinds (keeps the run short)
    jobs = []
    for i, kind in enumerate(kinds):
        for j in range(3):
            jobs.append((kind, sizes[(i * 3 + j * 7) % len(sizes)]))
    for k, size in enumerate(sizes):
        jobs.append(("rgb_png" if k % 2 else "rgb_jpg", size))
    for n, (kind, (w, h)) in enumerate(jobs):
        name = f"{n:03d}_{kind}_{w}x{h}"
        rgb = smooth_noise(rng, h, w, 3)
        alpha = smooth_noise(rng, h, w, 1)[:, :, 0]
        alpha[rng.random((h, w)) < 0.15] = 0
        alpha[rng.random((h, w)) < 0.15] = 255
        gray = rgb[:, :, 0]
        ext = "jpg" if kind.endswith("jpg") else "png"
        path = os.path.join(outdir, name + "." + ext)
        u8 = rgb.astype(np.uint8)
        if kind == "rgb_png":
            Image.fromarray(u8).save(path)
        elif kind in ("rgb_jpg", "jpg444", "jpg422", "progressive_jpg"):
            sub = {"rgb_jpg": 2, "jpg444": 0, "jpg422": 1, "progressive_jpg": 2}[kind]
            Image.fromarray(u8).save(path, quality=int(rng.integers(60, 98)), subsampling=sub,
                                     progressive=kind == "progressive_jpg")
        elif kind == "exif_rotated_jpg":
            exif = Image.Exif()
            exif[0x0112] = 6  # orientation: rotate 90 CW; PIL (and clipc) do NOT apply it
            Image.fromarray(u8).save(path, quality=90, exif=exif)
        elif kind == "l_png":
            Image.fromarray(gray.astype(np.uint8), "L").save(path)
        elif kind == "l_jpg":
            Image.fromarray(gray.astype(np.uint8), "L").save(path, quality=85)
        elif kind == "cmyk_jpg":
            Image.fromarray(u8).convert("CMYK").save(path, quality=92)
        elif kind == "p_png":
            n_colors = int(rng.integers(2, 200))
            palette = rng.integers(0, 256, (n_colors, 3))
            index = (gray * n_colors // 256).astype(np.int64)
            write_png(path, index[:, :, None], 3, 8, palette=palette)
        elif kind == "p4_png":
            palette = rng.integers(0, 256, (16, 3))
            write_png(path, (gray // 16)[:, :, None], 3, 4, palette=palette,
                      trns=bytes(rng.integers(0, 256, 16).astype(np.uint8)))
        elif kind == "interlaced_p2_png":
            palette = rng.integers(0, 256, (4, 3))
            write_png(path, (gray // 64)[:, :, None], 3, 2, palette=palette, interlace=True)
        elif kind == "rgba_png":
            Image.fromarray(np.dstack([u8, alpha.astype(np.uint8)]), "RGBA").save(path)
        elif kind == "la_png":
            write_png(path, np.dstack([gray, alpha]), 4, 8)
        elif kind == "rgb16_png":
            write_png(path, smooth_noise(rng, h, w, 3, 65535), 2, 16)
        elif kind == "rgba16_png":
            write_png(path, smooth_noise(rng, h, w, 4, 65535), 6, 16, interlace=True)
        elif kind == "la16_png":
            write_png(path, smooth_noise(rng, h, w, 2, 65535), 4, 16)
        elif kind == "i16_png":
            # values around 0..600 so that both clipping and gradation show after "I" -> RGB
            write_png(path, smooth_noise(rng, h, w, 1, 600), 0, 16)
        elif kind == "l2_png":
            write_png(path, smooth_noise(rng, h, w, 1, 3), 0, 2)
        elif kind == "l4_png":
            write_png(path, smooth_noise(rng, h, w, 1, 15), 0, 4, interlace=True)
        elif kind == "bit1_png":
            write_png(path, smooth_noise(rng, h, w, 1, 1), 0, 1)
        elif kind == "interlaced_rgb_png":
            write_png(path, rgb, 2, 8, interlace=True)
        elif kind == "trns_rgb_png":
            write_png(path, rgb, 2, 8, trns=struct.pack(">HHH", 10, 20, 30))
        yield name, path


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "make":
        sys.exit(__doc__)
    outdir, seed = sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(seed)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "manifest.tsv"), "w") as manifest:
        for name, path in make_images(outdir, rng):
            im = Image.open(path)
            im.load()
            np.save(os.path.join(outdir, name + ".rgb.npy"), np.ascontiguousarray(np.asarray(im.convert("RGB"))))
            for size, crop in ((224, 224), (int(rng.integers(16, 80)), None)):
                crop = crop or size - int(rng.integers(0, 3))  # crop <= size, sometimes smaller
                if im.mode == "RGB" and rng.random() < 0.2:
                    crop = size + int(rng.integers(1, 4))  # crop larger than the image: zero padding
                o8 = openai_u8(im, size, crop)
                h8 = hf_u8(im, size, crop)
                tag = f"{name}.{size}_{crop}"
                np.save(os.path.join(outdir, tag + ".openai_u8.npy"), np.ascontiguousarray(o8))
                np.save(os.path.join(outdir, tag + ".hf_u8.npy"), np.ascontiguousarray(h8))
                np.save(os.path.join(outdir, tag + ".openai.npy"), openai_float(o8))
                np.save(os.path.join(outdir, tag + ".hf.npy"), hf_float(h8))
                manifest.write(f"{name}\t{os.path.basename(path)}\t{size}\t{crop}\t{im.mode}\n")


if __name__ == "__main__":
    main()
