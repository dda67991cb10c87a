#!/usr/bin/python3
"""image_formats_ref.py — the PIL reference for clipc's WebP, GIF, BMP and TIFF decoding.

usage: image_formats_ref.py make OUTDIR SEED
  Writes WebP / GIF / BMP / TIFF files of fresh random content in every mode PIL writes for each format
  (and, for BMP, the layouts PIL reads but does not write: 4-bit, 16-bit, bitfields, top-down, RLE,
  OS/2 headers, short palettes), then, exactly as data_image_ref.py does for PNG/JPEG, what PIL 9.4
  gives for each: NAME.rgb.npy (convert("RGB")), the openai and hf 8-bit crops and float tensors, and
  OUTDIR/manifest.tsv (name, file, size S, crop C, PIL mode). PIL is the one that reads every file back.
"""
import io
import os
import struct
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data_image_ref as base  # noqa: E402  (smooth_noise, openai_u8, hf_u8, openai_float, hf_float)


# ------------------------------------------------------------------------------------------------
# BMP files written by hand (PIL writes only 1 / L / P / RGB / RGBA with a 40-byte header)
# ------------------------------------------------------------------------------------------------

def bmp_file(header, pixel_data, palette=b"", masks_after=b"", offset=None):
    """header: the DIB header bytes (its size field included)."""
    start = 14 + len(header) + len(masks_after) + len(palette)
    offset = start if offset is None else offset
    gap = b"\0" * max(0, offset - start)
    body = header + masks_after + palette + gap + pixel_data
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, offset) + body


def info_header(size, w, h, bits, compression=0, colors=0, masks=None):
    head = struct.pack("<IiiHHIIiiII", size, w, h, 1, bits, compression, 0, 2835, 2835, colors, 0)
    if size > 40:
        extra = struct.pack("<4I", *(masks or (0, 0, 0, 0)))
        head += extra + b"\0" * (size - 40 - len(extra))
    return head


def pack_rows(rows, bits):
    """rows: [H][W] ints (already in file order); returns the rows padded to 4 bytes."""
    out = bytearray()
    for row in rows:
        if bits >= 8:
            raw = bytes(row) if bits == 8 else b"".join(int(v).to_bytes(bits // 8, "little") for v in row)
        else:
            per = 8 // bits
            raw = bytearray((len(row) + per - 1) // per)
            for i, v in enumerate(row):
                raw[i // per] |= int(v) << (8 - bits * (i % per + 1))
            raw = bytes(raw)
        out += raw + b"\0" * ((-len(raw)) % 4)
    return bytes(out)


def rle_encode(rows, rle4, rng):
    """RLE8 / RLE4 of index rows (file order), with encoded runs, absolute runs, end-of-line, end."""
    out = bytearray()
    for row in rows:
        x, w = 0, len(row)
        while x < w:
            if rng.random() < 0.5:  # encoded run
                n = int(min(w - x, rng.integers(1, 12)))
                if rle4:
                    a, b = int(row[x]), int(row[x + 1]) if n > 1 else 0
                    for i in range(n):  # rewrite the row so that it matches what the run encodes
                        row[x + i] = a if i % 2 == 0 else b
                    out += bytes([n, a << 4 | b])
                else:
                    for i in range(n):
                        row[x + i] = row[x]
                    out += bytes([n, int(row[x])])
                x += n
            else:  # absolute run of >= 3 pixels (an even count for RLE4: PIL reads n // 2 bytes)
                n = int(min(w - x, rng.integers(3, 14)))
                if rle4:
                    n -= n % 2
                if n < 3:  # too short for an absolute run: one encoded pixel
                    out += bytes([1, int(row[x]) << 4 if rle4 else int(row[x])])
                    x += 1
                    continue
                if rle4:
                    data = bytes(int(row[x + i]) << 4 | int(row[x + i + 1]) for i in range(0, n, 2))
                else:
                    data = bytes(int(v) for v in row[x:x + n])
                out += bytes([0, n]) + data + (b"\0" if len(data) % 2 else b"")
                x += n
        out += b"\0\0"
    out += b"\0\1"
    return bytes(out)


def write_bmp_kind(path, kind, rng, w, h):
    rgb = base.smooth_noise(rng, h, w, 3)
    if kind == "bmp4_p":
        palette = rng.integers(0, 256, (16, 4)).astype(np.uint8)
        rows = (rgb[::-1, :, 0] // 16).tolist()
        data = bmp_file(info_header(40, w, h, 4, colors=16), pack_rows(rows, 4), palette.tobytes())
    elif kind == "bmp1_p":  # two colours that are not black and white: mode P
        palette = rng.integers(0, 256, (2, 4)).astype(np.uint8)
        rows = (rgb[::-1, :, 0] // 128).tolist()
        data = bmp_file(info_header(40, w, h, 1, colors=2), pack_rows(rows, 1), palette.tobytes())
    elif kind == "bmp8_short_palette":  # indices past the palette: PIL's gray ramp
        n = int(rng.integers(5, 40))
        palette = rng.integers(0, 256, (n, 4)).astype(np.uint8)
        rows = (rgb[::-1, :, 0] * (2 * n) // 256).tolist()
        data = bmp_file(info_header(40, w, h, 8, colors=n), pack_rows(rows, 8), palette.tobytes())
    elif kind == "bmp8_gray_ramp":  # a gray-ramp palette: PIL opens mode L
        palette = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 4, 1)
        palette[:, 3] = 0
        rows = rgb[::-1, :, 1].tolist()
        data = bmp_file(info_header(40, w, h, 8), pack_rows(rows, 8), palette.tobytes())
    elif kind == "bmp24_topdown":
        rows = [[int(b) | int(g) << 8 | int(r) << 16 for r, g, b in line] for line in rgb]
        data = bmp_file(info_header(40, w, -h, 24), pack_rows(rows, 24))
    elif kind == "bmp16_555":
        v = base.smooth_noise(rng, h, w, 3, 31)
        rows = (v[::-1, :, 0] << 10 | v[::-1, :, 1] << 5 | v[::-1, :, 2]).tolist()
        data = bmp_file(info_header(40, w, h, 16), pack_rows(rows, 16))
    elif kind == "bmp16_565_bitfields":
        v = base.smooth_noise(rng, h, w, 3, 31)
        g = base.smooth_noise(rng, h, w, 1, 63)[:, :, 0]
        rows = (v[::-1, :, 0] << 11 | g[::-1] << 5 | v[::-1, :, 2]).tolist()
        data = bmp_file(info_header(40, w, h, 16, compression=3), pack_rows(rows, 16),
                        masks_after=struct.pack("<3I", 0xF800, 0x7E0, 0x1F))
    elif kind in ("bmp32_v5_bgra", "bmp32_v4_bgrx", "bmp32_v5_abgr"):
        a = base.smooth_noise(rng, h, w, 1)[:, :, 0]
        a[rng.random((h, w)) < 0.2] = 0
        r, g, b = rgb[::-1, :, 0], rgb[::-1, :, 1], rgb[::-1, :, 2]
        a = a[::-1]
        if kind == "bmp32_v5_abgr":
            masks, rows = (0xFF000000, 0xFF0000, 0xFF00, 0xFF), (a | b << 8 | g << 16 | r << 24).tolist()
        else:
            masks = (0xFF0000, 0xFF00, 0xFF, 0xFF000000 if kind == "bmp32_v5_bgra" else 0)
            rows = (b | g << 8 | r << 16 | a << 24).tolist()
        size = 124 if "v5" in kind else 108
        data = bmp_file(info_header(size, w, h, 32, compression=3, masks=masks), pack_rows(rows, 32))
    elif kind in ("bmp_rle8", "bmp_rle4"):
        rle4 = kind == "bmp_rle4"
        n = 16 if rle4 else int(rng.integers(20, 256))
        palette = rng.integers(0, 256, (n, 4)).astype(np.uint8)
        rows = (rgb[::-1, :, 0] * n // 256).tolist()
        encoded = rle_encode(rows, rle4, rng)
        data = bmp_file(info_header(40, w, h, 4 if rle4 else 8, compression=2 if rle4 else 1, colors=n), encoded,
                        palette.tobytes())
    elif kind == "bmp_os2_8":  # 12-byte header, 3-byte palette entries
        palette = rng.integers(0, 256, (256, 3)).astype(np.uint8)
        head = struct.pack("<IHHHH", 12, w, h, 1, 8)
        data = bmp_file(head, pack_rows(rgb[::-1, :, 2].tolist(), 8), palette.tobytes())
    else:
        raise ValueError(kind)
    with open(path, "wb") as f:
        f.write(data)


# ------------------------------------------------------------------------------------------------
# GIF: PIL's files, and one whose first frame is moved inside a larger screen
# ------------------------------------------------------------------------------------------------

def gif_blocks(data):
    """Offset of the first image descriptor (after the header, global palette and extensions)."""
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 7) + 1)
    while data[pos] == 0x21:
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C
    return pos


def offset_first_frame(data, dx, dy, grow_w, grow_h):
    data = bytearray(data)
    w, h = struct.unpack("<HH", data[6:10])
    struct.pack_into("<HH", data, 6, w + grow_w, h + grow_h)
    at = gif_blocks(data)
    struct.pack_into("<HH", data, at + 1, dx, dy)
    return bytes(data)


def move_palette_to_frame(data, drop=False):
    """The global colour table becomes the first frame's local one (or, with drop, disappears: PIL then
    opens the indices as gray levels, mode L)."""
    data = bytearray(data)
    flags = data[10]
    assert flags & 0x80
    bits = flags & 7
    n = 3 << (bits + 1)
    table = data[13:13 + n]
    data[10] = flags & 0x70
    del data[13:13 + n]
    at = gif_blocks(bytes(data))
    if not drop:
        data[at + 9] = (data[at + 9] & 0x40) | 0x80 | bits
        data[at + 10:at + 10] = table
    return bytes(data)


def random_palette_image(rng, w, h, n_colors):
    rgb = base.smooth_noise(rng, h, w, 1)[:, :, 0]
    index = (rgb * n_colors // 256).astype(np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(rng.integers(0, 256, 3 * n_colors).astype(np.uint8).tobytes())
    return im


def write_gif_kind(path, kind, rng, w, h):
    n = int(rng.integers(2, 256))
    if kind == "gif_p":
        random_palette_image(rng, w, h, n).save(path)
    elif kind == "gif_p_transparency":
        random_palette_image(rng, w, h, n).save(path, transparency=int(rng.integers(0, n)))
    elif kind == "gif_l":
        Image.fromarray(base.smooth_noise(rng, h, w, 1)[:, :, 0].astype(np.uint8), "L").save(path)
    elif kind == "gif_l_transparency":
        Image.fromarray(base.smooth_noise(rng, h, w, 1)[:, :, 0].astype(np.uint8), "L").save(path, transparency=7)
    elif kind == "gif_animated":
        frames = [random_palette_image(rng, w, h, int(rng.integers(2, 256))) for _ in range(3)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0, disposal=2)
    elif kind in ("gif_local_palette", "gif_no_palette", "gif_l_local_palette"):
        buf = io.BytesIO()
        if kind == "gif_l_local_palette":  # a local gray ramp: PIL drops it, mode L
            Image.fromarray(base.smooth_noise(rng, h, w, 1)[:, :, 0].astype(np.uint8), "L").save(buf, "GIF")
        else:
            random_palette_image(rng, w, h, n).save(buf, "GIF")
        with open(path, "wb") as f:
            f.write(move_palette_to_frame(buf.getvalue(), drop=kind == "gif_no_palette"))
    elif kind in ("gif_offset_frame", "gif_offset_frame_transparency"):
        buf = io.BytesIO()
        extra = {"transparency": int(rng.integers(1, n))} if kind.endswith("transparency") else {}
        random_palette_image(rng, w, h, n).save(buf, "GIF", **extra)
        dx, dy = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        # the screen grows by less than the offset now and then: PIL then grows the canvas itself
        data = offset_first_frame(buf.getvalue(), dx, dy, int(rng.integers(0, 6)), int(rng.integers(0, 6)))
        with open(path, "wb") as f:
            f.write(data)
    else:
        raise ValueError(kind)


# ------------------------------------------------------------------------------------------------
# WebP and TIFF: PIL's files
# ------------------------------------------------------------------------------------------------

def random_rgba(rng, w, h):
    rgb = base.smooth_noise(rng, h, w, 3).astype(np.uint8)
    alpha = base.smooth_noise(rng, h, w, 1)[:, :, 0]
    alpha[rng.random((h, w)) < 0.15] = 0
    alpha[rng.random((h, w)) < 0.15] = 255
    return Image.fromarray(np.dstack([rgb, alpha.astype(np.uint8)]), "RGBA")


def write_webp_kind(path, kind, rng, w, h):
    quality = int(rng.integers(50, 100))
    rgb = Image.fromarray(base.smooth_noise(rng, h, w, 3).astype(np.uint8))
    if kind == "webp_rgb_lossy":
        rgb.save(path, quality=quality)
    elif kind == "webp_rgb_lossless":
        rgb.save(path, lossless=True)
    elif kind == "webp_rgba_lossy":
        random_rgba(rng, w, h).save(path, quality=quality)
    elif kind == "webp_rgba_lossless":
        random_rgba(rng, w, h).save(path, lossless=True, exact=bool(rng.integers(0, 2)))
    elif kind == "webp_animated":
        frames = [random_rgba(rng, w, h) if i % 2 else
                  Image.fromarray(base.smooth_noise(rng, h, w, 3).astype(np.uint8)) for i in range(3)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, lossless=bool(rng.integers(0, 2)),
                       quality=quality)
    elif kind == "webp_animated_rgb":
        frames = [Image.fromarray(base.smooth_noise(rng, h, w, 3).astype(np.uint8)) for _ in range(2)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, quality=quality)
    else:
        raise ValueError(kind)


def write_tiff_by_hand(path, samples, photometric, tiled=False, planar=1, extra=None, tile=16):
    """An uncompressed little-endian TIFF of 8-bit samples [H, W, C] in strips or 16x16 tiles."""
    h, w, c = samples.shape
    planes = [samples[:, :, i:i + 1] for i in range(c)] if planar == 2 else [samples]
    chunks = []
    for plane in planes:
        if tiled:
            padded = np.zeros((-(-h // tile) * tile, -(-w // tile) * tile, plane.shape[2]), np.uint8)
            padded[:h, :w] = plane
            for ty in range(0, h, tile):
                for tx in range(0, w, tile):
                    chunks.append(padded[ty:ty + tile, tx:tx + tile].tobytes())
        else:
            chunks += [plane[y].tobytes() for y in range(h)]  # one row per strip
    data, offsets = b"", []
    for chunk in chunks:
        offsets.append(8 + len(data))
        data += chunk
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8] * c), (259, 3, [1]), (262, 3, [photometric]),
               (277, 3, [c]), (284, 3, [planar])]
    if tiled:
        entries += [(322, 3, [tile]), (323, 3, [tile]), (324, 4, offsets), (325, 4, [len(x) for x in chunks])]
    else:
        entries += [(273, 4, offsets), (278, 3, [1]), (279, 4, [len(x) for x in chunks])]
    if extra is not None:
        entries.append((338, 3, [extra]))
    entries.sort()
    ifd_at = 8 + len(data)
    ifd_at += ifd_at % 2
    external_at = ifd_at + 2 + 12 * len(entries) + 4
    ifd, external = b"", b""
    for tag, typ, values in entries:
        raw = struct.pack(f"<{len(values)}{'H' if typ == 3 else 'I'}", *values)
        if len(raw) <= 4:
            ifd += struct.pack("<HHI", tag, typ, len(values)) + raw.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, typ, len(values), external_at + len(external))
            external += raw
    blob = b"II*\0" + struct.pack("<I", ifd_at) + data + b"\0" * (ifd_at - 8 - len(data))
    blob += struct.pack("<H", len(entries)) + ifd + b"\0\0\0\0" + external
    with open(path, "wb") as f:
        f.write(blob)


def write_tiff_kind(path, kind, rng, w, h):
    rgb = base.smooth_noise(rng, h, w, 3).astype(np.uint8)
    compression = [None, "tiff_lzw", "tiff_adobe_deflate", "packbits"][int(rng.integers(0, 4))]
    extra = {"compression": compression} if compression else {}
    if kind == "tiff_rgb":
        Image.fromarray(rgb).save(path, **extra)
    elif kind == "tiff_rgba":
        random_rgba(rng, w, h).save(path, **extra)
    elif kind == "tiff_l":
        Image.fromarray(rgb[:, :, 0], "L").save(path, **extra)
    elif kind == "tiff_1":
        Image.fromarray(rgb[:, :, 0] > 128).convert("1").save(path, **extra)
    elif kind == "tiff_p":
        random_palette_image(rng, w, h, int(rng.integers(2, 256))).save(path, **extra)
    elif kind == "tiff_i16":
        v = base.smooth_noise(rng, h, w, 1, 600)[:, :, 0].astype(np.uint16)
        Image.fromarray(v, "I;16").save(path, **extra)
    elif kind == "tiff_la":
        random_rgba(rng, w, h).convert("LA").save(path, **extra)
    elif kind == "tiff_cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path, **extra)
    elif kind == "tiff_rgb_oriented":  # PIL applies the Orientation tag of a TIFF
        Image.fromarray(rgb).save(path, tiffinfo={0x0112: int(rng.integers(1, 9))}, **extra)
    elif kind == "tiff_rgba_tiled":  # PIL does not write tiles: by hand, PIL reads it
        write_tiff_by_hand(path, np.asarray(random_rgba(rng, w, h)), 2, tiled=True, extra=2)
    elif kind == "tiff_rgb_planar":  # one plane per sample (PlanarConfiguration 2)
        write_tiff_by_hand(path, rgb, 2, planar=2, tiled=bool(rng.integers(0, 2)))
    else:
        raise ValueError(kind)


def as_clipc_reads(im):
    """PIL cannot resize I;16 with bicubic (openai's transform raises on it); clipc reads it as mode I
    (the same values, the same convert("RGB")) and resizes it as PIL resizes I."""
    return im.convert("I") if im.mode == "I;16" else im


KINDS = {
    "webp": ["webp_rgb_lossy", "webp_rgb_lossless", "webp_rgba_lossy", "webp_rgba_lossless", "webp_animated",
             "webp_animated_rgb"],
    "gif": ["gif_p", "gif_p_transparency", "gif_l", "gif_l_transparency", "gif_animated", "gif_offset_frame",
            "gif_offset_frame_transparency", "gif_local_palette", "gif_no_palette", "gif_l_local_palette"],
    "bmp": ["bmp_pil_1", "bmp_pil_L", "bmp_pil_P", "bmp_pil_RGB", "bmp_pil_RGBA", "bmp4_p", "bmp1_p",
            "bmp8_short_palette", "bmp8_gray_ramp", "bmp24_topdown", "bmp16_555", "bmp16_565_bitfields",
            "bmp32_v5_bgra", "bmp32_v4_bgrx", "bmp32_v5_abgr", "bmp_rle8", "bmp_rle4", "bmp_os2_8"],
    "tiff": ["tiff_rgb", "tiff_rgba", "tiff_l", "tiff_1", "tiff_p", "tiff_i16", "tiff_la", "tiff_cmyk",
             "tiff_rgb_oriented", "tiff_rgba_tiled", "tiff_rgb_planar"],
}


def write_kind(path, kind, rng, w, h):
    if kind.startswith("bmp_pil_"):
        mode = kind[len("bmp_pil_"):]
        if mode == "RGBA":
            im = random_rgba(rng, w, h)
        elif mode == "P":
            im = random_palette_image(rng, w, h, int(rng.integers(2, 256)))
        else:
            im = Image.fromarray(base.smooth_noise(rng, h, w, 3).astype(np.uint8)).convert(mode)
        im.save(path, "BMP")
    elif kind.startswith("bmp"):
        write_bmp_kind(path, kind, rng, w, h)
    elif kind.startswith("gif"):
        write_gif_kind(path, kind, rng, w, h)
    elif kind.startswith("webp"):
        write_webp_kind(path, kind, rng, w, h)
    else:
        write_tiff_kind(path, kind, rng, w, h)


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "make":
        sys.exit(__doc__)
    outdir, seed = sys.argv[2], int(sys.argv[3])
    formats = sys.argv[4].split(",") if len(sys.argv) > 4 else list(KINDS)
    rng = np.random.default_rng(seed)
    os.makedirs(outdir, exist_ok=True)
    sizes = [(1, 1), (2, 3), (5, 3), (7, 7), (31, 17), (17, 31), (64, 48), (100, 75), (225, 224), (257, 163),
             (163, 300), (320, 240)]
    with open(os.path.join(outdir, "manifest.tsv"), "w") as manifest:
        n = 0
        for fmt in formats:
            for kind in KINDS[fmt]:
                for _ in range(2):
                    w, h = sizes[int(rng.integers(0, len(sizes)))]
                    name = f"{n:03d}_{kind}_{w}x{h}"
                    n += 1
                    path = os.path.join(outdir, f"{name}.{fmt}")
                    write_kind(path, kind, rng, w, h)
                    im = Image.open(path)
                    im.load()
                    np.save(os.path.join(outdir, name + ".rgb.npy"), np.ascontiguousarray(np.asarray(im.convert("RGB"))))
                    im = as_clipc_reads(im)
                    for size in (224, int(rng.integers(16, 80))):
                        crop = size - int(rng.integers(0, 3))
                        o8, h8 = base.openai_u8(im, size, crop), base.hf_u8(im, size, crop)
                        tag = f"{name}.{size}_{crop}"
                        np.save(os.path.join(outdir, tag + ".openai_u8.npy"), np.ascontiguousarray(o8))
                        np.save(os.path.join(outdir, tag + ".hf_u8.npy"), np.ascontiguousarray(h8))
                        np.save(os.path.join(outdir, tag + ".openai.npy"), base.openai_float(o8))
                        np.save(os.path.join(outdir, tag + ".hf.npy"), base.hf_float(h8))
                        manifest.write(f"{name}\t{os.path.basename(path)}\t{size}\t{crop}\t{im.mode}\n")


if __name__ == "__main__":
    main()
