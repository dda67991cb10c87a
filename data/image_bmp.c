/* image_bmp.c — Windows / OS2 BMP decoding by hand, with exactly the rules of PIL 9.4's BmpImagePlugin
 * (which modes a header opens as, which bitfield layouts it reads, its RLE reader), so that the pixels
 * equal Image.open(f).convert("RGB"). Every size and offset of the file is checked against its length
 * before it is used; arithmetic is 64-bit.
 *
 * PIL's rules, mirrored here:
 *   - headers of 12 (OS/2 1.x), 40, 64, 108 or 124 bytes; a height whose top byte is 0xFF is top-down;
 *   - 1/4/8 bits: palette (B, G, R[, X]); a palette that is exactly black, white (2 colours) or the
 *     gray ramp 0..n-1 opens as mode "1" / "L" and the pixel bytes are then read as such (PIL reads a
 *     1-bit value per pixel for "1", a byte per pixel for "L", whatever the file's bit depth);
 *   - 16 bits: 5-5-5 (or 5-6-5 with bitfields), each value scaled by 255/31 (255/63); 24: B, G, R;
 *     32: B, G, R, X (the 4th byte ignored), or one of PIL's bitfield layouts (with alpha: RGBA);
 *   - RLE8 / RLE4 with PIL's reading (deltas fill zeros, a short file is an error);
 *   - palette indices past the palette read as the gray ramp (i, i, i), as PIL's palette does.
 */
#include <stdlib.h>
#include <string.h>

#include "data/image_internal.h"
#include "engine/util.h"

enum { BMP_RAW = 0, BMP_RLE8 = 1, BMP_RLE4 = 2, BMP_BITFIELDS = 3 };

/* How the pixel bytes are unpacked: PIL's raw modes of the BMP plugin. */
typedef enum {
    RAW_P1, RAW_P4, RAW_P8, /* palette indices of 1, 4, 8 bits */
    RAW_BIT1,               /* mode "1": one bit per pixel -> 0 / 255 */
    RAW_L8,                 /* mode "L": one byte per pixel */
    RAW_BGR15, RAW_BGR16, RAW_BGR,
    RAW_BGRX, RAW_XBGR, RAW_ABGR, RAW_RGBA, RAW_BGRA,
} bmp_rawmode;

typedef struct bmp_header {
    uint64_t header_size, width, height, colors, offset;
    int top_down, bits, palette_padding;
    uint32_t compression, masks[4];
    uint64_t after_header;  /* file position after the header (and the masks a 40-byte header reads) */
} bmp_header;

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int bmp_fail(const char *name, const char *what) {
    cc_set_error("%s: cannot read BMP: %s", name, what);
    return -1;
}

static int read_header(const uint8_t *d, size_t size, const char *name, bmp_header *h) {
    memset(h, 0, sizeof *h);
    if (size < 18) return bmp_fail(name, "file ends inside the header");
    h->offset = le32(d + 10);
    h->header_size = le32(d + 14);
    if (h->header_size != 12 && h->header_size != 40 && h->header_size != 64 && h->header_size != 108 &&
        h->header_size != 124)
        return bmp_fail(name, "unsupported header size (not 12, 40, 64, 108 or 124 bytes)");
    if (14 + h->header_size > size) return bmp_fail(name, "file ends inside the header");
    const uint8_t *hd = d + 18; /* the header after its size field */
    h->after_header = 14 + h->header_size;
    if (h->header_size == 12) {
        h->width = le16(hd);
        h->height = le16(hd + 2);
        h->bits = (int)le16(hd + 6);
        h->compression = BMP_RAW;
        h->palette_padding = 3;
    } else {
        h->top_down = hd[7] == 0xFF;
        h->width = le32(hd);
        h->height = h->top_down ? (1ULL << 32) - le32(hd + 4) : le32(hd + 4);
        h->bits = (int)le16(hd + 10);
        h->compression = le32(hd + 12);
        h->colors = le32(hd + 28);
        h->palette_padding = 4;
        if (h->compression == BMP_BITFIELDS) {
            if (h->header_size - 4 >= 52) {
                for (int i = 0; i < 4; i++) h->masks[i] = le32(hd + 36 + 4 * i);
            } else { /* a 40-byte header: three masks follow it, no alpha */
                if (h->after_header + 12 > size) return bmp_fail(name, "file ends inside the bitfield masks");
                for (int i = 0; i < 3; i++) h->masks[i] = le32(d + h->after_header + 4 * i);
                h->after_header += 12;
            }
        }
    }
    if (h->colors == 0) h->colors = h->bits < 63 ? 1ULL << h->bits : 0;
    if (h->offset == 14 + h->header_size && h->bits <= 8) h->offset += 4 * h->colors;
    return 0;
}

typedef struct mask_layout {
    int bits;
    uint32_t masks[4];
    int n_masks; /* 3: compared without alpha (16 / 24 bits) */
    bmp_rawmode raw;
} mask_layout;

static const mask_layout MASK_LAYOUTS[] = {
    {32, {0xFF0000, 0xFF00, 0xFF, 0x0}, 4, RAW_BGRX},
    {32, {0xFF000000, 0xFF0000, 0xFF00, 0x0}, 4, RAW_XBGR},
    {32, {0xFF000000, 0xFF0000, 0xFF00, 0xFF}, 4, RAW_ABGR},
    {32, {0xFF, 0xFF00, 0xFF0000, 0xFF000000}, 4, RAW_RGBA},
    {32, {0xFF0000, 0xFF00, 0xFF, 0xFF000000}, 4, RAW_BGRA},
    {32, {0x0, 0x0, 0x0, 0x0}, 4, RAW_BGRA},
    {24, {0xFF0000, 0xFF00, 0xFF, 0}, 3, RAW_BGR},
    {16, {0xF800, 0x7E0, 0x1F, 0}, 3, RAW_BGR16},
    {16, {0x7C00, 0x3E0, 0x1F, 0}, 3, RAW_BGR15},
};

/* The mode and raw mode of the pixel data, before the palette is looked at. */
static int pick_rawmode(const bmp_header *h, const char *name, cc_image_mode *mode, bmp_rawmode *raw) {
    switch (h->bits) {
    case 1: *mode = CC_IMAGE_P, *raw = RAW_P1; break;
    case 4: *mode = CC_IMAGE_P, *raw = RAW_P4; break;
    case 8: *mode = CC_IMAGE_P, *raw = RAW_P8; break;
    case 16: *mode = CC_IMAGE_RGB, *raw = RAW_BGR15; break;
    case 24: *mode = CC_IMAGE_RGB, *raw = RAW_BGR; break;
    case 32: *mode = CC_IMAGE_RGB, *raw = RAW_BGRX; break;
    default: return bmp_fail(name, "unsupported pixel depth (not 1, 4, 8, 16, 24 or 32 bits)");
    }
    if (h->compression == BMP_BITFIELDS) {
        for (size_t i = 0; i < sizeof MASK_LAYOUTS / sizeof MASK_LAYOUTS[0]; i++) {
            const mask_layout *m = &MASK_LAYOUTS[i];
            if (m->bits == h->bits && !memcmp(m->masks, h->masks, (size_t)m->n_masks * sizeof(uint32_t))) {
                *raw = m->raw;
                if (m->raw == RAW_ABGR || m->raw == RAW_RGBA || m->raw == RAW_BGRA) *mode = CC_IMAGE_RGBA;
                return 0;
            }
        }
        return bmp_fail(name, "unsupported bitfields layout");
    }
    if (h->compression != BMP_RAW && h->compression != BMP_RLE8 && h->compression != BMP_RLE4)
        return bmp_fail(name, "unsupported compression (not raw, RLE8, RLE4 or bitfields)");
    return 0;
}

/* Reads the palette of a 1/4/8-bit file into rgb_palette (256 entries, the gray ramp past the file's
 * colours) and turns the mode into "1" or "L" when PIL would. */
static int read_palette(const uint8_t *d, size_t size, const char *name, bmp_header *h, cc_image_mode *mode,
                        bmp_rawmode *raw, uint8_t rgb_palette[256][3], uint64_t *palette_end) {
    if (h->colors == 0 || h->colors > 256) return bmp_fail(name, "unsupported palette size (more than 256 colours)");
    uint64_t pad = (uint64_t)h->palette_padding, bytes = pad * h->colors;
    if (h->after_header + bytes > size) return bmp_fail(name, "file ends inside the palette");
    const uint8_t *p = d + h->after_header;
    *palette_end = h->after_header + bytes;
    int greyscale = 1;
    for (uint64_t i = 0; i < h->colors; i++) {
        unsigned want = h->colors == 2 ? (i ? 255u : 0u) : (unsigned)i;
        if (p[i * pad] != want || p[i * pad + 1] != want || p[i * pad + 2] != want) greyscale = 0;
    }
    for (int i = 0; i < 256; i++) rgb_palette[i][0] = rgb_palette[i][1] = rgb_palette[i][2] = (uint8_t)i;
    if (greyscale) {
        *mode = h->colors == 2 ? CC_IMAGE_1 : CC_IMAGE_L;
        *raw = h->colors == 2 ? RAW_BIT1 : RAW_L8;
        return 0;
    }
    for (uint64_t i = 0; i < h->colors; i++) {
        rgb_palette[i][0] = p[i * pad + 2];
        rgb_palette[i][1] = p[i * pad + 1];
        rgb_palette[i][2] = p[i * pad];
    }
    return 0;
}

static int rawmode_bits(bmp_rawmode raw) {
    switch (raw) {
    case RAW_P1: case RAW_BIT1: return 1;
    case RAW_P4: return 4;
    case RAW_P8: case RAW_L8: return 8;
    case RAW_BGR15: case RAW_BGR16: return 16;
    case RAW_BGR: return 24;
    default: return 32;
    }
}

/* One row of pixel bytes -> RGB (and alpha). */
static void unpack_row(const uint8_t *in, int width, bmp_rawmode raw, const uint8_t palette[256][3], uint8_t *rgb,
                       uint8_t *alpha) {
    for (int x = 0; x < width; x++) {
        uint8_t *o = rgb + 3 * x;
        unsigned index, pixel;
        switch (raw) {
        case RAW_P1: case RAW_P4: case RAW_P8:
            index = raw == RAW_P1 ? (in[x >> 3] >> (7 - (x & 7))) & 1u
                  : raw == RAW_P4 ? (in[x >> 1] >> (x & 1 ? 0 : 4)) & 15u : in[x];
            memcpy(o, palette[index], 3);
            break;
        case RAW_BIT1: o[0] = o[1] = o[2] = (in[x >> 3] >> (7 - (x & 7))) & 1u ? 255 : 0; break;
        case RAW_L8: o[0] = o[1] = o[2] = in[x]; break;
        case RAW_BGR15:
            pixel = le16(in + 2 * x);
            o[0] = (uint8_t)(((pixel >> 10) & 31) * 255 / 31);
            o[1] = (uint8_t)(((pixel >> 5) & 31) * 255 / 31);
            o[2] = (uint8_t)((pixel & 31) * 255 / 31);
            break;
        case RAW_BGR16:
            pixel = le16(in + 2 * x);
            o[0] = (uint8_t)(((pixel >> 11) & 31) * 255 / 31);
            o[1] = (uint8_t)(((pixel >> 5) & 63) * 255 / 63);
            o[2] = (uint8_t)((pixel & 31) * 255 / 31);
            break;
        case RAW_BGR: o[0] = in[3 * x + 2], o[1] = in[3 * x + 1], o[2] = in[3 * x]; break;
        default: {
            /* byte positions of R, G, B, A in each 4-byte pixel (-1: no alpha) */
            static const int8_t order[][4] = {
                [RAW_BGRX] = {2, 1, 0, -1}, [RAW_XBGR] = {3, 2, 1, -1}, [RAW_ABGR] = {3, 2, 1, 0},
                [RAW_RGBA] = {0, 1, 2, 3},  [RAW_BGRA] = {2, 1, 0, 3},
            };
            const uint8_t *p = in + 4 * x;
            for (int c = 0; c < 3; c++) o[c] = p[order[raw][c]];
            if (alpha && order[raw][3] >= 0) alpha[x] = p[order[raw][3]];
        }
        }
    }
}

/* PIL's BmpRleDecoder: a stream of palette indices (or gray values), rows in file order, into out
 * (width * height bytes, zeroed). PIL's `data` may grow past the image; only its length is kept then. */
static int decode_rle(const uint8_t *d, size_t size, const char *name, const bmp_header *h, int rle4, uint8_t *out) {
    uint64_t xsize = h->width, total = h->width * h->height, pos = h->offset, x = 0;
    uint64_t len = 0; /* len(data) in PIL's decoder */
    while (len < total) {
        if (pos + 2 > size) break;
        unsigned n = d[pos], byte = d[pos + 1];
        pos += 2;
        if (n) {
            uint64_t run = x + n > xsize ? (xsize > x ? xsize - x : 0) : n;
            for (uint64_t i = 0; i < run; i++, len++)
                if (len < total) out[len] = (uint8_t)(rle4 ? (i % 2 == 0 ? byte >> 4 : byte & 15) : byte);
            x += run;
        } else if (byte == 0) { /* end of line */
            len += (xsize - len % xsize) % xsize;
            x = 0;
        } else if (byte == 1) { /* end of bitmap */
            break;
        } else if (byte == 2) { /* delta: PIL fills right + up * width zeros */
            if (pos + 2 > size) break;
            len += d[pos] + (uint64_t)d[pos + 1] * xsize;
            pos += 2;
            x = len % xsize;
        } else { /* absolute run of `byte` pixels (PIL reads byte // 2 bytes for RLE4) */
            uint64_t byte_count = rle4 ? byte / 2 : byte;
            uint64_t avail = size - pos < byte_count ? size - pos : byte_count;
            for (uint64_t i = 0; i < avail; i++) {
                unsigned v = d[pos + i];
                if (rle4) {
                    if (len < total) out[len] = (uint8_t)(v >> 4);
                    len++;
                    if (len < total) out[len] = (uint8_t)(v & 15);
                    len++;
                } else {
                    if (len < total) out[len] = (uint8_t)v;
                    len++;
                }
            }
            pos += avail;
            if (avail < byte_count) break;
            x += byte;
            if (pos % 2) pos++; /* word alignment, of the position in the file */
        }
    }
    if (len < total) {
        cc_set_error("%s: corrupt BMP: the RLE data ends before the image is complete", name);
        return -1;
    }
    return 0;
}

int cc_probe_bmp(const uint8_t *data, size_t size, const char *name, int *width, int *height) {
    bmp_header h;
    if (read_header(data, size, name, &h) != 0) return -1;
    if (cc_image_check_dimensions(name, "BMP", (long long)h.width, (long long)h.height, NULL) != 0) return -1;
    *width = (int)h.width;
    *height = (int)h.height;
    return 0;
}

int cc_decode_bmp(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                  cc_image *out) {
    bmp_header h;
    cc_image_mode mode;
    bmp_rawmode raw;
    if (read_header(data, size, name, &h) != 0 || pick_rawmode(&h, name, &mode, &raw) != 0) return -1;
    if (cc_image_check_dimensions(name, "BMP", (long long)h.width, (long long)h.height, options) != 0) return -1;
    static const uint8_t no_palette[256][3];
    uint8_t (*palette)[3] = NULL;
    uint64_t data_start = h.after_header;
    if (mode == CC_IMAGE_P) {
        palette = malloc(256 * 3);
        if (!palette) return bmp_fail(name, "out of memory");
        if (read_palette(data, size, name, &h, &mode, &raw, palette, &data_start) != 0) {
            free(palette);
            return -1;
        }
    }
    uint64_t offset = h.offset ? h.offset : data_start;
    int width = (int)h.width, height = (int)h.height;
    int rle = h.compression == BMP_RLE8 || h.compression == BMP_RLE4;
    int rc = -1;
    uint8_t *indices = NULL;
    if (rle && mode != CC_IMAGE_P && mode != CC_IMAGE_L) {
        bmp_fail(name, "unsupported RLE compression of a non-palette image");
        goto done;
    }
    size_t scratch = rle ? (size_t)width * (size_t)height : 0;
    if (cc_image_check_budget(name, "BMP", width, height, mode, scratch, options) != 0) goto done;
    uint64_t stride = (((uint64_t)h.width * (uint64_t)h.bits + 31) >> 3) & ~3ULL;
    uint64_t row_bytes = ((uint64_t)h.width * (uint64_t)rawmode_bits(raw) + 7) / 8;
    if (!rle) {
        if (row_bytes > stride) { /* PIL's raw decoder refuses rows longer than the stride */
            bmp_fail(name, "the palette's mode needs more bytes per row than the file has");
            goto done;
        }
        if (offset > size || (uint64_t)(height - 1) * stride + row_bytes > size - offset) {
            cc_set_error("%s: truncated BMP: the pixel data needs %llu bytes from offset %llu, the file has %zu", name,
                         (unsigned long long)((uint64_t)(height - 1) * stride + row_bytes), (unsigned long long)offset, size);
            goto done;
        }
    } else {
        indices = cc_calloc((size_t)width * (size_t)height, 1, name);
        if (!indices) goto done;
        if (decode_rle(data, size, name, &h, h.compression == BMP_RLE4, indices) != 0) goto done;
        stride = row_bytes = (uint64_t)width;
        raw = mode == CC_IMAGE_L ? RAW_L8 : RAW_P8;
    }
    if (cc_image_alloc(out, width, height, mode, options, name) != 0) goto done;
    const uint8_t *pixels = rle ? indices : data + offset;
    for (int y = 0; y < height; y++) {
        int row = h.top_down ? y : height - 1 - y; /* bottom-up unless the height was negative */
        uint8_t *alpha = out->alpha ? out->alpha + (size_t)row * width : NULL;
        unpack_row(pixels + (uint64_t)y * stride, width, raw, palette ? (const uint8_t (*)[3])palette : no_palette,
                   out->rgb + (size_t)row * width * 3, alpha);
    }
    rc = 0;
done:
    free(palette);
    free(indices);
    return rc;
}
