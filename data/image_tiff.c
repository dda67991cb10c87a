/* image_tiff.c — the first page of a TIFF with libtiff (from memory; strips or tiles, any compression
 * libtiff decodes without colour conversion: none, LZW, Deflate, PackBits, ...), mapped to the mode PIL
 * 9.4's TiffImagePlugin opens it as (its OPEN_INFO table), for the layouts below; others are refused
 * with an error naming the file:
 *   gray 1/2/4/8 bit ("1", L; WhiteIsZero inverted; 2/4-bit values scaled to 0..255), gray 16 bit (PIL
 *   "I;16", kept as mode I here: same values, and PIL itself cannot resize I;16 with bicubic),
 *   gray + alpha 8 bit (LA), RGB 8/16 bit, RGBA 8/16 bit (unassociated or unspecified alpha), RGB + an
 *   unspecified 4th sample (RGBX -> RGB), palette 1/2/4/8 bit (colormap / 256), CMYK 8 bit.
 * 16-bit colour samples keep their high byte, as PIL's RGB;16 unpackers do. Like PIL, the Orientation
 * tag is applied (PIL's TIFF loader transposes the image after loading).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "data/image_internal.h"
#include "engine/util.h"

typedef struct tiff_source {
    const char *name;
    const uint8_t *data;
    size_t size, pos;
    char message[256];
} tiff_source;

static tmsize_t source_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_source *s = h;
    size_t left = s->pos < s->size ? s->size - s->pos : 0, want = n > 0 ? (size_t)n : 0;
    if (want > left) want = left;
    memcpy(buf, s->data + s->pos, want);
    s->pos += want;
    return (tmsize_t)want;
}
static tmsize_t source_write(thandle_t h, void *buf, tmsize_t n) { return 0; }
static toff_t source_seek(thandle_t h, toff_t offset, int whence) {
    tiff_source *s = h;
    uint64_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->size : 0;
    if (offset > UINT64_MAX - base) return (toff_t)-1;
    s->pos = (size_t)(base + offset > SIZE_MAX ? SIZE_MAX : base + offset);
    return s->pos;
}
static int source_close(thandle_t h) { return 0; }
static toff_t source_size(thandle_t h) { return ((tiff_source *)h)->size; }
static int source_map(thandle_t h, void **base, toff_t *size) { return 0; }
static void source_unmap(thandle_t h, void *base, toff_t size) {}

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    tiff_source *s = user;
    if (s->message[0]) return 1; /* the first error is the cause */
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    /* libtiff starts some messages with the file name, which our message gives already */
    size_t n = s->name ? strlen(s->name) : 0;
    if (n && !strncmp(s->message, s->name, n) && s->message[n] == ':')
        memmove(s->message, s->message + n + (s->message[n + 1] == ' ' ? 2 : 1), strlen(s->message + n) + 1);
    return 1;
}
static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) { return 1; }

static TIFF *open_tiff(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                       tiff_source *src) {
    memset(src, 0, sizeof *src);
    src->name = name;
    src->data = data;
    src->size = size;
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) {
        cc_set_error("%s: out of memory opening the TIFF", name);
        return NULL;
    }
    int64_t cap = options && options->max_decoded_bytes > 0 ? options->max_decoded_bytes : CC_IMAGE_MAX_DECODED_BYTES;
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)cap);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, src);
    /* "m": no memory mapping (the callbacks read from the buffer) */
    TIFF *tif = TIFFClientOpenExt(name, "rm", src, source_read, source_write, source_seek, source_close, source_size,
                                  source_map, source_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif) cc_set_error("%s: corrupt TIFF: %s", name, src->message[0] ? src->message : "cannot read the header");
    return tif;
}

/* What the first page holds and how it maps to a PIL mode. */
typedef struct tiff_layout {
    uint32_t width, height;
    uint16_t bits, spp, photometric, planar, orientation;
    cc_image_mode mode;
    int invert;      /* WhiteIsZero */
    int alpha;       /* sample index of the alpha, or -1 */
    int gray16;      /* 16-bit gray (PIL I;16) */
} tiff_layout;

static int unsupported(const char *name, const tiff_layout *t, const char *what) {
    cc_set_error("%s: unsupported TIFF (%s: photometric %u, %u samples of %u bits)", name, what, t->photometric, t->spp,
                 t->bits);
    return -1;
}

static int read_layout(TIFF *tif, const char *name, tiff_layout *t) {
    memset(t, 0, sizeof *t);
    uint16_t sample_format = SAMPLEFORMAT_UINT, n_extra = 0, *extra = NULL;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &t->width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &t->height)) {
        cc_set_error("%s: corrupt TIFF: no image size", name);
        return -1;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &t->bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &t->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &t->planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &t->orientation);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &n_extra, &extra);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &t->photometric)) {
        cc_set_error("%s: unsupported TIFF: no photometric interpretation", name);
        return -1;
    }
    int extra0 = n_extra ? extra[0] : -1; /* -1: no ExtraSamples tag */
    t->alpha = -1;
    if (sample_format != SAMPLEFORMAT_UINT) return unsupported(name, t, "samples are not unsigned integers");
    uint16_t p = t->photometric, spp = t->spp, bits = t->bits;
    if ((p == PHOTOMETRIC_MINISWHITE || p == PHOTOMETRIC_MINISBLACK) && spp == 1) {
        t->invert = p == PHOTOMETRIC_MINISWHITE;
        if (bits == 1) t->mode = CC_IMAGE_1;
        else if (bits == 2 || bits == 4 || bits == 8) t->mode = CC_IMAGE_L;
        else if (bits == 16) t->mode = CC_IMAGE_I, t->gray16 = 1, t->invert = 0; /* PIL: I;16 either way */
        else return unsupported(name, t, "gray depth");
    } else if (p == PHOTOMETRIC_MINISBLACK && spp == 2 && bits == 8 && extra0 == EXTRASAMPLE_UNASSALPHA) {
        t->mode = CC_IMAGE_LA, t->alpha = 1;
    } else if (p == PHOTOMETRIC_RGB && (bits == 8 || bits == 16) && (spp == 3 || spp == 4)) {
        t->mode = CC_IMAGE_RGB;
        if (spp == 4) {
            if (extra0 == EXTRASAMPLE_ASSOCALPHA) return unsupported(name, t, "premultiplied alpha");
            if (extra0 != EXTRASAMPLE_UNSPECIFIED || bits == 16) t->mode = CC_IMAGE_RGBA, t->alpha = 3;
            if (extra0 == EXTRASAMPLE_UNSPECIFIED && bits == 16) return unsupported(name, t, "16-bit RGBX");
        }
    } else if (p == PHOTOMETRIC_PALETTE && spp == 1 && (bits == 1 || bits == 2 || bits == 4 || bits == 8)) {
        t->mode = CC_IMAGE_P;
    } else if (p == PHOTOMETRIC_SEPARATED && spp == 4 && bits == 8) {
        uint16_t inkset = INKSET_CMYK;
        TIFFGetFieldDefaulted(tif, TIFFTAG_INKSET, &inkset);
        if (inkset != INKSET_CMYK) return unsupported(name, t, "inks other than CMYK");
        t->mode = CC_IMAGE_CMYK;
    } else {
        return unsupported(name, t, "layout");
    }
    return 0;
}

/* The decoded samples of every row, plane after plane when planar: planes * height rows of row_bytes. */
static int read_raster(TIFF *tif, const char *name, const tiff_layout *t, tiff_source *src, uint8_t *raster,
                       size_t row_bytes) {
    int planes = t->planar == PLANARCONFIG_SEPARATE ? t->spp : 1;
    if (!TIFFIsTiled(tif)) {
        /* whole strips straight into place (as PIL's libtiff decoder reads them: a strip that decodes
         * short leaves zeros, a strip that fails is an error) */
        uint32_t rows_per_strip = 0;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
        if (rows_per_strip == 0 || rows_per_strip > t->height) rows_per_strip = t->height;
        for (int p = 0; p < planes; p++)
            for (uint32_t y = 0; y < t->height; y += rows_per_strip) {
                uint32_t rows = t->height - y < rows_per_strip ? t->height - y : rows_per_strip;
                uint32_t strip = TIFFComputeStrip(tif, y, (uint16_t)p);
                if (strip >= TIFFNumberOfStrips(tif) ||
                    TIFFReadEncodedStrip(tif, strip, raster + ((size_t)p * t->height + y) * row_bytes,
                                         (tmsize_t)((size_t)rows * row_bytes)) < 0)
                    goto fail;
            }
        return 0;
    }
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    uint64_t tile_row = TIFFTileRowSize64(tif), tile_size = TIFFTileSize64(tif);
    uint64_t pixel_bits = (uint64_t)t->bits * (planes == 1 ? t->spp : 1);
    if (tw == 0 || th == 0 || tile_row == 0 || tile_size < tile_row * th || (tw * pixel_bits) % 8) {
        cc_set_error("%s: corrupt TIFF: bad tile size %ux%u", name, tw, th);
        return -1;
    }
    uint8_t *tile = cc_malloc((size_t)tile_size, name);
    if (!tile) return -1;
    for (int p = 0; p < planes; p++)
        for (uint32_t ty = 0; ty < t->height; ty += th)
            for (uint32_t tx = 0; tx < t->width; tx += tw) {
                if (TIFFReadTile(tif, tile, tx, ty, 0, (uint16_t)p) < 0) {
                    free(tile);
                    goto fail;
                }
                size_t at = (size_t)(tx * pixel_bits / 8), n = (size_t)tile_row;
                if (n > row_bytes - at) n = row_bytes - at;
                for (uint32_t r = 0; r < th && ty + r < t->height; r++)
                    memcpy(raster + ((size_t)p * t->height + ty + r) * row_bytes + at, tile + (size_t)r * tile_row, n);
            }
    free(tile);
    return 0;
fail:
    cc_set_error("%s: corrupt or truncated TIFF: %s", name, src->message[0] ? src->message : "cannot decode the data");
    return -1;
}

/* Sample s of pixel x in row y. */
static unsigned get_sample(const tiff_layout *t, const uint8_t *raster, size_t row_bytes, uint32_t y, uint32_t x,
                           int s) {
    int separate = t->planar == PLANARCONFIG_SEPARATE;
    const uint8_t *row = raster + ((size_t)(separate ? s : 0) * t->height + y) * row_bytes;
    uint64_t index = separate ? x : (uint64_t)x * t->spp + (uint64_t)s;
    switch (t->bits) {
    case 8: return row[index];
    case 16: {
        uint16_t v;
        memcpy(&v, row + 2 * index, 2); /* libtiff returns native byte order */
        return v;
    }
    default: {
        uint64_t bit = index * t->bits;
        return (row[bit / 8] >> (8 - t->bits - bit % 8)) & ((1u << t->bits) - 1);
    }
    }
}

/* The common case, 8-bit chunky RGB / RGBA / RGBX: whole rows without the per-sample reader. */
static int fill_rgb8_fast(const tiff_layout *t, const uint8_t *raster, size_t row_bytes, cc_image *out) {
    if (t->bits != 8 || t->planar == PLANARCONFIG_SEPARATE || (t->mode != CC_IMAGE_RGB && t->mode != CC_IMAGE_RGBA))
        return 0;
    int spp = t->spp;
    for (uint32_t y = 0; y < t->height; y++) {
        const uint8_t *row = raster + (size_t)y * row_bytes;
        uint8_t *rgb = out->rgb + (size_t)y * t->width * 3;
        uint8_t *alpha = out->alpha ? out->alpha + (size_t)y * t->width : NULL;
        if (spp == 3) {
            memcpy(rgb, row, (size_t)t->width * 3);
            continue;
        }
        for (uint32_t x = 0; x < t->width; x++) {
            memcpy(rgb + 3 * x, row + (size_t)spp * x, 3);
            if (alpha && t->alpha >= 0) alpha[x] = row[(size_t)spp * x + t->alpha];
        }
    }
    return 1;
}

static void fill_pixels(const tiff_layout *t, const uint8_t *raster, size_t row_bytes, const uint8_t palette[256][3],
                        cc_image *out) {
    if (fill_rgb8_fast(t, raster, row_bytes, out)) return;
    unsigned scale = t->bits == 1 ? 255 : t->bits == 2 ? 85 : t->bits == 4 ? 17 : 1;
    for (uint32_t y = 0; y < t->height; y++)
        for (uint32_t x = 0; x < t->width; x++) {
            size_t i = (size_t)y * t->width + x;
            uint8_t *o = out->rgb + 3 * i;
            unsigned v;
            switch (t->mode) {
            case CC_IMAGE_1: case CC_IMAGE_L: case CC_IMAGE_LA:
                v = get_sample(t, raster, row_bytes, y, x, 0) * scale;
                if (t->invert) v = 255 - v;
                o[0] = o[1] = o[2] = (uint8_t)v;
                break;
            case CC_IMAGE_I:
                v = get_sample(t, raster, row_bytes, y, x, 0);
                if (out->gray16) out->gray16[i] = (uint16_t)v;
                o[0] = o[1] = o[2] = (uint8_t)(v > 255 ? 255 : v);
                break;
            case CC_IMAGE_P: memcpy(o, palette[get_sample(t, raster, row_bytes, y, x, 0)], 3); break;
            case CC_IMAGE_CMYK: {
                uint8_t cmyk[4];
                for (int c = 0; c < 4; c++) cmyk[c] = (uint8_t)get_sample(t, raster, row_bytes, y, x, c);
                if (out->cmyk) memcpy(out->cmyk + 4 * i, cmyk, 4);
                cc_image_cmyk_to_rgb(cmyk, o, 1);
                break;
            }
            default: /* RGB, RGBA: 16-bit samples keep the high byte */
                for (int c = 0; c < 3; c++) {
                    v = get_sample(t, raster, row_bytes, y, x, c);
                    o[c] = (uint8_t)(t->bits == 16 ? v >> 8 : v);
                }
            }
            if (t->alpha >= 0 && out->alpha) {
                v = get_sample(t, raster, row_bytes, y, x, t->alpha);
                out->alpha[i] = (uint8_t)(t->bits == 16 ? v >> 8 : v);
            }
        }
}

/* One plane of `bytes` per pixel, transposed as PIL's Image.transpose does for orientation 2..8. */
static int orient_plane(uint8_t **plane, size_t bytes, int width, int height, int orientation, const char *name) {
    if (!*plane) return 0;
    uint8_t *out = cc_malloc((size_t)width * height * bytes, name);
    if (!out) return -1;
    int swap = orientation >= 5;
    int out_w = swap ? height : width, out_h = swap ? width : height;
    for (int y = 0; y < out_h; y++)
        for (int x = 0; x < out_w; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = width - 1 - x, sy = y; break;                /* FLIP_LEFT_RIGHT */
            case 3: sx = width - 1 - x, sy = height - 1 - y; break;   /* ROTATE_180 */
            case 4: sx = x, sy = height - 1 - y; break;               /* FLIP_TOP_BOTTOM */
            case 5: sx = y, sy = x; break;                            /* TRANSPOSE */
            case 6: sx = y, sy = height - 1 - x; break;               /* ROTATE_270 (clockwise) */
            case 7: sx = width - 1 - y, sy = height - 1 - x; break;   /* TRANSVERSE */
            default: sx = width - 1 - y, sy = x; break;               /* 8: ROTATE_90 */
            }
            memcpy(out + ((size_t)y * out_w + x) * bytes, *plane + ((size_t)sy * width + sx) * bytes, bytes);
        }
    free(*plane);
    *plane = out;
    return 0;
}

static int apply_orientation(cc_image *img, int orientation, const char *name) {
    if (orientation < 2 || orientation > 8) return 0;
    int w = img->width, h = img->height;
    if (orient_plane(&img->rgb, 3, w, h, orientation, name) || orient_plane(&img->alpha, 1, w, h, orientation, name) ||
        orient_plane((uint8_t **)&img->gray16, 2, w, h, orientation, name) ||
        orient_plane(&img->cmyk, 4, w, h, orientation, name))
        return -1;
    if (orientation >= 5) img->width = h, img->height = w;
    return 0;
}

int cc_probe_tiff(const uint8_t *data, size_t size, const char *name, int *width, int *height) {
    tiff_source src;
    TIFF *tif = open_tiff(data, size, name, NULL, &src);
    if (!tif) return -1;
    tiff_layout t;
    int rc = read_layout(tif, name, &t);
    if (rc == 0) rc = cc_image_check_dimensions(name, "TIFF", t.width, t.height, NULL);
    if (rc == 0) {
        int swap = t.orientation >= 5 && t.orientation <= 8;
        *width = (int)(swap ? t.height : t.width);
        *height = (int)(swap ? t.width : t.height);
    }
    TIFFClose(tif);
    return rc;
}

int cc_decode_tiff(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                   cc_image *out) {
    tiff_source src;
    TIFF *tif = open_tiff(data, size, name, options, &src);
    if (!tif) return -1;
    tiff_layout t;
    uint8_t *raster = NULL;
    int rc = -1;
    if (read_layout(tif, name, &t) != 0) goto done;
    if (cc_image_check_dimensions(name, "TIFF", t.width, t.height, options) != 0) goto done;
    uint64_t row_bytes = TIFFScanlineSize64(tif);
    int planes = t.planar == PLANARCONFIG_SEPARATE ? t.spp : 1;
    uint64_t need_row = ((uint64_t)t.width * t.bits * (planes == 1 ? t.spp : 1) + 7) / 8;
    if (row_bytes < need_row) {
        cc_set_error("%s: corrupt TIFF: rows of %llu bytes for %u pixels", name, (unsigned long long)row_bytes, t.width);
        goto done;
    }
    double raster_bytes = (double)row_bytes * t.height * planes;
    /* orientation copies one plane at a time */
    size_t scratch = raster_bytes < 1e18 ? (size_t)raster_bytes + (size_t)t.width * t.height * 4 : SIZE_MAX / 2;
    if (cc_image_check_budget(name, "TIFF", (int)t.width, (int)t.height, t.mode, scratch, options) != 0) goto done;
    raster = cc_calloc((size_t)raster_bytes, 1, name);
    if (!raster) goto done;
    if (read_raster(tif, name, &t, &src, raster, (size_t)row_bytes) != 0) goto done;
    uint8_t palette[256][3];
    for (int i = 0; i < 256; i++) palette[i][0] = palette[i][1] = palette[i][2] = (uint8_t)i;
    if (t.mode == CC_IMAGE_P) {
        uint16_t *r, *g, *b;
        if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b)) {
            cc_set_error("%s: corrupt TIFF: palette image without a colormap", name);
            goto done;
        }
        for (int i = 0; i < 1 << t.bits; i++) /* PIL: each 16-bit entry // 256 */
            palette[i][0] = (uint8_t)(r[i] >> 8), palette[i][1] = (uint8_t)(g[i] >> 8), palette[i][2] = (uint8_t)(b[i] >> 8);
    }
    if (cc_image_alloc(out, (int)t.width, (int)t.height, t.mode, options, name) != 0) goto done;
    fill_pixels(&t, raster, (size_t)row_bytes, (const uint8_t (*)[3])palette, out);
    free(raster);
    raster = NULL;
    if (apply_orientation(out, t.orientation, name) != 0) goto done;
    rc = 0;
done:
    free(raster);
    TIFFClose(tif);
    return rc;
}
