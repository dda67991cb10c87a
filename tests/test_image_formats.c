/* test_image_formats.c — WebP, GIF, BMP and TIFF without Python: files written with the format's own
 * library (libwebp's encoder, giflib's EGif, libtiff) or by hand (BMP) decode to the pixels written,
 * and bad files (truncated anywhere, corrupted bytes, sizes and offsets that lie, decompression bombs)
 * fail with an error naming the file, never a crash (run under ASan by `make test`). The PIL parity of
 * every mode is image_formats_match_pil in test_data_image.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>
#include <tiffio.h>
#include <webp/encode.h>

#include "data/image.h"
#include "data/preprocess.h"
#include "engine/util.h"
#include "tests/test.h"

static uint8_t *random_pixels(cc_rng *rng, int width, int height, int channels) {
    uint8_t *p = malloc((size_t)width * height * channels);
    for (size_t i = 0; i < (size_t)width * height * channels; i++) p[i] = (uint8_t)cc_rng_below(rng, 256);
    return p;
}

/* ---- writers */

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }

/* A bottom-up 24-bit BMP (40-byte header) of rgb. */
static uint8_t *make_bmp24(const uint8_t *rgb, int width, int height, size_t *size) {
    size_t stride = ((size_t)width * 3 + 3) & ~(size_t)3, offset = 54;
    *size = offset + stride * height;
    uint8_t *f = calloc(1, *size);
    f[0] = 'B', f[1] = 'M';
    put32(f + 2, (uint32_t)*size);
    put32(f + 10, (uint32_t)offset);
    put32(f + 14, 40);
    put32(f + 18, (uint32_t)width);
    put32(f + 22, (uint32_t)height);
    put16(f + 26, 1);
    put16(f + 28, 24);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++)
                f[offset + (size_t)(height - 1 - y) * stride + 3 * x + c] = rgb[((size_t)y * width + x) * 3 + 2 - c];
    return f;
}

typedef struct membuf {
    uint8_t *data;
    size_t size, cap;
} membuf;

static int gif_write(GifFileType *gif, const GifByteType *bytes, int n) {
    membuf *m = gif->UserData;
    if (m->size + (size_t)n > m->cap) {
        m->cap = (m->size + (size_t)n) * 2;
        m->data = realloc(m->data, m->cap);
    }
    memcpy(m->data + m->size, bytes, (size_t)n);
    m->size += (size_t)n;
    return n;
}

/* An 8-bit GIF of indices with a 256-entry palette (first frame only). */
static uint8_t *make_gif(const uint8_t *indices, const uint8_t palette[256][3], int width, int height, size_t *size) {
    membuf m = {0};
    int error = 0;
    GifFileType *gif = EGifOpen(&m, gif_write, &error);
    ColorMapObject *map = GifMakeMapObject(256, NULL);
    for (int i = 0; i < 256; i++) map->Colors[i] = (GifColorType){palette[i][0], palette[i][1], palette[i][2]};
    EGifSetGifVersion(gif, true);
    EGifPutScreenDesc(gif, width, height, 8, 0, map);
    EGifPutImageDesc(gif, 0, 0, width, height, false, NULL);
    for (int y = 0; y < height; y++) EGifPutLine(gif, (GifPixelType *)indices + (size_t)y * width, width);
    EGifCloseFile(gif, &error);
    GifFreeMapObject(map);
    *size = m.size;
    return m.data;
}

/* A TIFF of rgb (strips, given compression), through a temporary file. */
static uint8_t *make_tiff(const uint8_t *rgb, int width, int height, int compression, size_t *size) {
    const char *path = test_path("t.tif");
    TIFF *tif = TIFFOpen(path, "w");
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, compression);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 3);
    for (int y = 0; y < height; y++) TIFFWriteScanline(tif, (void *)(rgb + (size_t)y * width * 3), (uint32_t)y, 0);
    TIFFClose(tif);
    char *data;
    if (cc_read_file(path, &data, size) != 0) return NULL;
    return (uint8_t *)data;
}

/* ---- checks */

/* Every prefix length in a spread of cuts, and bytes flipped at random: an error naming the file, or
 * (for a flip the format does not notice) a decoded image of a sane size. Never a crash. */
static void check_damage(cc_rng *rng, const uint8_t *file, size_t size, const char *name, int must_fail_when_cut) {
    cc_image img;
    for (int k = 0; k < 40; k++) {
        size_t cut = k < 20 ? (size_t)k * size / 20 : (size_t)cc_rng_below(rng, (uint64_t)size);
        int rc = cc_image_decode(file, cut, name, &img);
        if (rc == 0) {
            CHECK(!must_fail_when_cut || cut >= size - 4, "%s cut at %zu of %zu decoded", name, cut, size);
            cc_image_free(&img);
        } else {
            CHECK(strstr(cc_last_error(), name) != NULL, "%s cut at %zu: error does not name the file: %s", name, cut,
                  cc_last_error());
        }
    }
    uint8_t *bad = malloc(size);
    for (int k = 0; k < 60; k++) {
        memcpy(bad, file, size);
        for (int j = 0; j < 1 + k % 4; j++) bad[cc_rng_below(rng, (uint64_t)size)] = (uint8_t)cc_rng_below(rng, 256);
        if (cc_image_decode(bad, size, name, &img) == 0) {
            CHECK(img.width > 0 && img.height > 0 && (int64_t)img.width * img.height <= CC_IMAGE_MAX_PIXELS);
            cc_image_free(&img);
        } else {
            CHECK(strstr(cc_last_error(), name) != NULL, "%s: %s", name, cc_last_error());
        }
    }
    free(bad);
}

static void check_round_trip(const uint8_t *file, size_t size, const char *name, const uint8_t *rgb, int width,
                             int height, const char *format) {
    cc_image img;
    REQUIRE(cc_image_decode(file, size, name, &img) == 0, "%s", cc_last_error());
    CHECK(img.width == width && img.height == height, "%s: %dx%d", name, img.width, img.height);
    CHECK(memcmp(img.rgb, rgb, (size_t)width * height * 3) == 0, "%s: pixels differ from those written", name);
    CHECK(strcmp(cc_image_format(file, size), format) == 0);
    int w, h;
    CHECK(cc_image_probe(file, size, name, &w, &h) == 0 && w == width && h == height, "%s probe: %s", name, cc_last_error());
    /* the decoded-bytes cap */
    cc_image_options tight = {.max_decoded_bytes = (int64_t)width * height * 2};
    CHECK(cc_image_decode_ex(file, size, name, &tight, &img) != 0 && strstr(cc_last_error(), "limit"), "%s: %s", name,
          cc_last_error());
    /* preprocessing from memory works on it */
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, 32);
    float *out = malloc(3 * 32 * 32 * sizeof(float));
    CHECK(cc_preprocess_memory(&cfg, file, size, name, out) == 0, "%s", cc_last_error());
    free(out);
    cc_image_free(&img);
}

TEST(image_formats_round_trip_and_damage) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int width = 3 + (int)cc_rng_below(&rng, 60), height = 2 + (int)cc_rng_below(&rng, 50);
    uint8_t *rgb = random_pixels(&rng, width, height, 3);
    size_t size;
    /* WebP lossless */
    uint8_t *webp = NULL;
    size = WebPEncodeLosslessRGB(rgb, width, height, width * 3, &webp);
    REQUIRE(size > 0);
    check_round_trip(webp, size, "a.webp", rgb, width, height, "webp");
    check_damage(&rng, webp, size, "a.webp", 1);
    WebPFree(webp);
    /* GIF: indices through a random palette */
    uint8_t palette[256][3], *indices = random_pixels(&rng, width, height, 1);
    for (int i = 0; i < 256; i++)
        for (int c = 0; c < 3; c++) palette[i][c] = (uint8_t)cc_rng_below(&rng, 256);
    uint8_t *want = malloc((size_t)width * height * 3);
    for (size_t i = 0; i < (size_t)width * height; i++) memcpy(want + 3 * i, palette[indices[i]], 3);
    uint8_t *gif = make_gif(indices, (const uint8_t (*)[3])palette, width, height, &size);
    check_round_trip(gif, size, "a.gif", want, width, height, "gif");
    check_damage(&rng, gif, size, "a.gif", 0); /* a GIF cut after its pixels (trailer missing) still reads */
    cc_image img;
    REQUIRE(cc_image_decode(gif, size, "a.gif", &img) == 0);
    CHECK(img.mode == CC_IMAGE_P);
    cc_image_free(&img);
    free(gif);
    /* BMP */
    uint8_t *bmp = make_bmp24(rgb, width, height, &size);
    check_round_trip(bmp, size, "a.bmp", rgb, width, height, "bmp");
    check_damage(&rng, bmp, size, "a.bmp", 1);
    /* BMP headers that lie: a pixel offset past the end, a huge width, an unknown header, 65536 colours */
    uint8_t *lie = malloc(size);
    memcpy(lie, bmp, size);
    put32(lie + 10, 0xfffffff0u);
    CHECK(cc_image_decode(lie, size, "offset.bmp", &img) != 0 && strstr(cc_last_error(), "offset.bmp"), "%s", cc_last_error());
    memcpy(lie, bmp, size);
    put32(lie + 18, 200000), put32(lie + 22, 200000);
    CHECK(cc_image_decode(lie, size, "bomb.bmp", &img) != 0 && strstr(cc_last_error(), "megapixels"), "%s", cc_last_error());
    memcpy(lie, bmp, size);
    put32(lie + 22, 0xffffffffu - 20); /* top-down, 21 rows: more than the file holds */
    CHECK(cc_image_decode(lie, size, "rows.bmp", &img) != 0 || img.height == 21, "%s", cc_last_error());
    cc_image_free(&img);
    memcpy(lie, bmp, size);
    put32(lie + 14, 41);
    CHECK(cc_image_decode(lie, size, "hdr.bmp", &img) != 0 && strstr(cc_last_error(), "header"), "%s", cc_last_error());
    memcpy(lie, bmp, size);
    put16(lie + 28, 8), put32(lie + 46, 65536);
    CHECK(cc_image_decode(lie, size, "pal.bmp", &img) != 0 && strstr(cc_last_error(), "palette"), "%s", cc_last_error());
    free(lie);
    free(bmp);
    /* TIFF, uncompressed and LZW */
    int compressions[2] = {COMPRESSION_NONE, COMPRESSION_LZW};
    for (int k = 0; k < 2; k++) {
        uint8_t *tiff = make_tiff(rgb, width, height, compressions[k], &size);
        REQUIRE(tiff != NULL);
        check_round_trip(tiff, size, "a.tif", rgb, width, height, "tiff");
        check_damage(&rng, tiff, size, "a.tif", 0); /* the directory may come first: a cut can still hold it all */
        free(tiff);
    }
    free(want);
    free(indices);
    free(rgb);
}

TEST(image_formats_signatures) {
    cc_image img;
    /* a signature alone, or a signature and garbage: errors naming the file and the format */
    const char *heads[] = {"RIFF\x10\0\0\0WEBPVP8 ", "GIF89a\x01\0\x01\0", "BM\0\0\0\0\0\0\0\0", "II*\0\x08\0\0\0", "MM\0*\0\0\0\x08"};
    const size_t lengths[] = {16, 10, 10, 8, 8};
    const char *formats[] = {"webp", "gif", "bmp", "tiff", "tiff"};
    for (int i = 0; i < 5; i++) {
        CHECK(strcmp(cc_image_format(heads[i], lengths[i]), formats[i]) == 0, "%d", i);
        CHECK(cc_image_decode(heads[i], lengths[i], "stub", &img) != 0 && strstr(cc_last_error(), "stub"), "%d: %s", i,
              cc_last_error());
    }
    CHECK(cc_image_format("hello", 5) == NULL && cc_image_format(NULL, 0) == NULL);
}
