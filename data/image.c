/* image.c — JPEG (TurboJPEG) and PNG (libpng) decoding into RGB8 with PIL's conversion rules, and
 * RGB/gray PNG and JPEG writers. See image.h for what "PIL's rules" are; the parity tests decode the
 * same files with PIL 9.4 and compare every byte. */
#include "data/image.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <turbojpeg.h>

#include "data/image_internal.h"
#include "engine/util.h"

static const unsigned char PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int is_jpeg(const uint8_t *data, size_t size) { return size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff; }
static int is_png(const uint8_t *data, size_t size) { return size >= 8 && memcmp(data, PNG_SIGNATURE, 8) == 0; }

const char *cc_image_mode_name(cc_image_mode mode) {
    switch (mode) {
    case CC_IMAGE_RGB: return "RGB";
    case CC_IMAGE_L: return "L";
    case CC_IMAGE_1: return "1";
    case CC_IMAGE_P: return "P";
    case CC_IMAGE_LA: return "LA";
    case CC_IMAGE_RGBA: return "RGBA";
    case CC_IMAGE_I: return "I";
    case CC_IMAGE_CMYK: return "CMYK";
    }
    return "?";
}

void cc_image_free(cc_image *img) {
    if (!img) return;
    free(img->rgb);
    free(img->alpha);
    free(img->gray16);
    free(img->cmyk);
    memset(img, 0, sizeof *img);
}

/* Checks the dimensions a header declares before anything is allocated for them. */
int cc_image_check_dimensions(const char *name, const char *format, long long width, long long height,
                              const cc_image_options *options) {
    int64_t limit = options && options->max_pixels > 0 ? options->max_pixels : CC_IMAGE_MAX_PIXELS;
    if (width <= 0 || height <= 0) {
        cc_set_error("%s: %s image has zero size (%lldx%lld)", name, format, width, height);
        return -1;
    }
    if (width > INT32_MAX / 4 || height > INT32_MAX / 4 || width * height > limit) {
        cc_set_error("%s: %s image is %lldx%lld = %.1f megapixels, above the limit of %.1f megapixels", name,
                     format, width, height, (double)width * (double)height / 1e6, (double)limit / 1e6);
        return -1;
    }
    return 0;
}

size_t cc_image_plane_bytes(int width, int height, cc_image_mode mode, const cc_image_options *options) {
    size_t n_pixels = (size_t)width * (size_t)height, per_pixel = 3;
    if (!(options && options->rgb_only)) {
        if (mode == CC_IMAGE_LA || mode == CC_IMAGE_RGBA) per_pixel += 1;
        if (mode == CC_IMAGE_I) per_pixel += sizeof(uint16_t);
        if (mode == CC_IMAGE_CMYK) per_pixel += 4;
    }
    return n_pixels * per_pixel;
}

int cc_image_check_budget(const char *name, const char *format, int width, int height, cc_image_mode mode,
                          size_t scratch_bytes, const cc_image_options *options) {
    int64_t limit = options && options->max_decoded_bytes > 0 ? options->max_decoded_bytes : CC_IMAGE_MAX_DECODED_BYTES;
    double total = (double)cc_image_plane_bytes(width, height, mode, options) + (double)scratch_bytes;
    if (total > (double)limit) {
        cc_set_error("%s: decoding this %dx%d %s image needs %.0f MB, above the limit of %.0f MB", name, width, height,
                     format, total / 1e6, (double)limit / 1e6);
        return -1;
    }
    return 0;
}

int cc_image_alloc(cc_image *img, int width, int height, cc_image_mode mode, const cc_image_options *options,
                   const char *name) {
    memset(img, 0, sizeof *img);
    size_t n_pixels = (size_t)width * (size_t)height;
    int keep_extra = !(options && options->rgb_only);
    img->width = width;
    img->height = height;
    img->mode = mode;
    img->scale_denom = 1;
    img->rgb = cc_malloc(n_pixels * 3, name);
    if (!img->rgb) return -1;
    if (keep_extra && (mode == CC_IMAGE_LA || mode == CC_IMAGE_RGBA)) {
        if (!(img->alpha = cc_malloc(n_pixels, name))) goto fail;
    }
    if (keep_extra && mode == CC_IMAGE_I) {
        if (!(img->gray16 = cc_malloc(n_pixels * sizeof(uint16_t), name))) goto fail;
    }
    if (keep_extra && mode == CC_IMAGE_CMYK) {
        if (!(img->cmyk = cc_malloc(n_pixels * 4, name))) goto fail;
    }
    return 0;
fail:
    cc_image_free(img);
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* JPEG                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

/* One TurboJPEG decompressor per thread, created on first use and destroyed at thread exit. */
static pthread_key_t tj_key;
static pthread_once_t tj_key_once = PTHREAD_ONCE_INIT;
static void destroy_tj_handle(void *handle) { tjDestroy(handle); }
static void create_tj_key(void) { pthread_key_create(&tj_key, destroy_tj_handle); }

/* After a failed decode the handle is discarded: libjpeg-turbo 2.1 can leave a handle whose decode
 * failed mid-stream unable to parse the next file's markers ("Bogus marker length"). */
static void drop_thread_decompressor(void) {
    tjhandle handle = pthread_getspecific(tj_key);
    if (handle) {
        tjDestroy(handle);
        pthread_setspecific(tj_key, NULL);
    }
}

static tjhandle thread_decompressor(void) {
    pthread_once(&tj_key_once, create_tj_key);
    tjhandle handle = pthread_getspecific(tj_key);
    if (!handle) {
        handle = tjInitDecompress();
        if (!handle) {
            cc_set_error("cannot create a JPEG decompressor: %s", tjGetErrorStr2(NULL));
            return NULL;
        }
        pthread_setspecific(tj_key, handle);
    }
    return handle;
}

/* PIL's CMYK -> RGB (Convert.c cmyk2rgb) on non-inverted CMYK samples:
 * out = nk - nk*c/255 with nk = 255 - k, using PIL's rounding division by 255. */
static inline uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned tmp = a * b + 128;
    return (uint8_t)(((tmp >> 8) + tmp) >> 8);
}

void cc_image_cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_pixels) {
    for (size_t i = 0; i < n_pixels; i++) {
        unsigned nk = 255u - cmyk[4 * i + 3];
        for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)(nk - muldiv255(cmyk[4 * i + c], nk));
    }
}

/* Picks the DCT scaling (1/2, 1/4, 1/8: the fast reduced IDCTs) that keeps the shorter side >= min_side. */
static int fast_scale_denom(int width, int height, int min_side) {
    int shorter = width < height ? width : height;
    int denom = 1;
    while (denom < 8 && (shorter + 2 * denom - 1) / (2 * denom) >= min_side) denom *= 2;
    return denom;
}

static int decode_jpeg(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                       cc_image *out) {
    tjhandle tj = thread_decompressor();
    if (!tj) return -1;
    int width = 0, height = 0, subsamp = 0, colorspace = -1; /* a tables-only stream leaves them unset */
    if (tjDecompressHeader3(tj, data, (unsigned long)size, &width, &height, &subsamp, &colorspace) != 0) {
        cc_set_error("%s: corrupt JPEG header: %s", name, tjGetErrorStr2(tj));
        drop_thread_decompressor();
        return -1;
    }
    if (cc_image_check_dimensions(name, "JPEG", width, height, options) != 0) return -1;
    int denom = 1;
    if (options && options->fast_min_side > 0) denom = fast_scale_denom(width, height, options->fast_min_side);
    int out_width = (width + denom - 1) / denom, out_height = (height + denom - 1) / denom;

    cc_image_mode mode = CC_IMAGE_RGB;
    int pixel_format = TJPF_RGB, channels = 3;
    if (colorspace == TJCS_GRAY) {
        mode = CC_IMAGE_L;
        pixel_format = TJPF_GRAY;
        channels = 1;
    } else if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
        mode = CC_IMAGE_CMYK;
        pixel_format = TJPF_CMYK;
        channels = 4;
    }
    size_t cmyk_scratch = mode == CC_IMAGE_CMYK && options && options->rgb_only ? (size_t)out_width * out_height * 4 : 0;
    if (cc_image_check_budget(name, "JPEG", out_width, out_height, mode, cmyk_scratch, options) != 0) return -1;
    if (cc_image_alloc(out, out_width, out_height, mode, options, name) != 0) return -1;
    out->scale_denom = denom;
    size_t n_pixels = (size_t)out_width * (size_t)out_height;
    uint8_t *target = out->rgb;
    if (channels == 4) {
        target = out->cmyk ? out->cmyk : cc_malloc(n_pixels * 4, name);
        if (!target) goto fail;
    }
    int rc = tjDecompress2(tj, data, (unsigned long)size, target, out_width, out_width * channels, out_height,
                           pixel_format, 0);
    if (rc != 0) {
        /* Warnings leave a complete image (e.g. "extraneous bytes before marker"), and PIL accepts
         * such files; a premature end of data means a truncated file, which PIL refuses. */
        const char *message = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) == TJERR_FATAL || strstr(message, "Premature end")) {
            cc_set_error("%s: %s JPEG: %s", name, strstr(message, "Premature end") ? "truncated" : "corrupt",
                         message);
            if (channels == 4 && target != out->cmyk) free(target);
            drop_thread_decompressor();
            goto fail;
        }
    }
    if (channels == 1) {
        /* gray -> RGB by replication, in place from the back */
        for (size_t i = n_pixels; i-- > 0;) out->rgb[3 * i] = out->rgb[3 * i + 1] = out->rgb[3 * i + 2] = out->rgb[i];
    } else if (channels == 4) {
        /* TurboJPEG returns Adobe-inverted samples; PIL reads them as "CMYK;I", i.e. inverts them */
        for (size_t i = 0; i < n_pixels * 4; i++) target[i] = (uint8_t)(255 - target[i]);
        cc_image_cmyk_to_rgb(target, out->rgb, n_pixels);
        if (target != out->cmyk) free(target);
    }
    return 0;
fail:
    cc_image_free(out);
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* JPEG regions (libjpeg API: cropped and skipped scanlines)                                      */
/* ---------------------------------------------------------------------------------------------- */

#define REGION_MARGIN 16 /* columns decoded beyond the requested ones: the first and last columns of a
                          * cropped decode can differ (fancy upsampling sees the crop edge); one column
                          * is enough in practice, the rest is slack */

typedef struct region_error {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int truncated;
    char message[JMSG_LENGTH_MAX];
} region_error;

static void region_error_exit(j_common_ptr cinfo) {
    region_error *err = (region_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

/* Warnings are ignored as in PIL, except a premature end of data: a truncated file. */
static void region_emit_message(j_common_ptr cinfo, int level) {
    region_error *err = (region_error *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = 1;
}

static int region_header(struct jpeg_decompress_struct *cinfo, region_error *err, const void *data, size_t size) {
    cinfo->err = jpeg_std_error(&err->mgr);
    err->mgr.error_exit = region_error_exit;
    err->mgr.emit_message = region_emit_message;
    err->truncated = 0;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    return jpeg_read_header(cinfo, TRUE);
}

int cc_jpeg_region_probe(const void *data, size_t size, const char *name, int *width, int *height) {
    if (!is_jpeg(data, size)) return 0;
    struct jpeg_decompress_struct cinfo;
    region_error err;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        cc_set_error("%s: corrupt JPEG header: %s", name, err.message);
        return -1;
    }
    region_header(&cinfo, &err, data, size);
    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    int handled = cinfo.jpeg_color_space != JCS_CMYK && cinfo.jpeg_color_space != JCS_YCCK;
    jpeg_destroy_decompress(&cinfo);
    if (cc_image_check_dimensions(name, "JPEG", *width, *height, NULL) != 0) return -1;
    return handled;
}

int cc_jpeg_decode_region(const void *data, size_t size, const char *name, int x0, int x1, int y0, int y1,
                          cc_image_region *out) {
    memset(out, 0, sizeof *out);
    struct jpeg_decompress_struct cinfo;
    region_error err;
    uint8_t *volatile rgb = NULL, *volatile last_row = NULL;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(last_row);
        cc_set_error("%s: corrupt JPEG: %s", name, err.message);
        return -1;
    }
    region_header(&cinfo, &err, data, size);
    int width = (int)cinfo.image_width, height = (int)cinfo.image_height;
    if (cc_image_check_dimensions(name, "JPEG", width, height, NULL) != 0 || x0 < 0 || y0 < 0 || x1 > width || y1 > height ||
        x0 >= x1 || y0 >= y1) {
        if (!strstr(cc_last_error(), name)) cc_set_error("%s: bad JPEG region", name);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB; /* gray is replicated, as TurboJPEG and PIL do */
    jpeg_start_decompress(&cinfo);
    JDIMENSION xoffset = (JDIMENSION)(x0 > REGION_MARGIN ? x0 - REGION_MARGIN : 0);
    JDIMENSION crop_end = (JDIMENSION)(x1 + REGION_MARGIN < width ? x1 + REGION_MARGIN : width);
    JDIMENSION crop_width = crop_end - xoffset;
    if (xoffset > 0 || crop_width < (JDIMENSION)width) jpeg_crop_scanline(&cinfo, &xoffset, &crop_width);
    size_t stride = (size_t)crop_width * 3;
    rgb = cc_malloc(stride * (size_t)(y1 - y0), name);
    if (!rgb) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    if (y0 > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)y0);
    while ((int)cinfo.output_scanline < y1) {
        JSAMPROW row = rgb + (size_t)((int)cinfo.output_scanline - y0) * stride;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
    }
    /* The rows below are skipped (entropy-decoded only) and the last one is read, so that a file cut
     * anywhere is noticed as in a full decode (skipping straight to the end reads nothing). */
    if (cinfo.output_scanline + 1 < cinfo.output_height)
        jpeg_skip_scanlines(&cinfo, cinfo.output_height - 1 - cinfo.output_scanline);
    if (cinfo.output_scanline < cinfo.output_height) {
        last_row = cc_malloc(stride, name); /* read and dropped */
        if (!last_row) {
            jpeg_destroy_decompress(&cinfo);
            free(rgb);
            return -1;
        }
        JSAMPROW row = last_row;
        jpeg_read_scanlines(&cinfo, &row, 1);
        free(last_row);
        last_row = NULL;
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (err.truncated) {
        free(rgb);
        cc_set_error("%s: truncated JPEG: Premature end of JPEG file", name);
        return -1;
    }
    out->rgb = rgb;
    out->x0 = (int)xoffset;
    out->y0 = y0;
    out->width = (int)crop_width;
    out->height = y1 - y0;
    out->full_width = width;
    out->full_height = height;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* PNG                                                                                            */
/* ---------------------------------------------------------------------------------------------- */

typedef struct png_reader {
    const uint8_t *data;
    size_t size, pos;
    char message[256];
} png_reader;

static void png_read_from_memory(png_structp png, png_bytep dest, size_t n) {
    png_reader *reader = png_get_io_ptr(png);
    if (n > reader->size - reader->pos) png_error(png, "truncated PNG (data ends early)");
    memcpy(dest, reader->data + reader->pos, n);
    reader->pos += n;
}

static void png_error_to_message(png_structp png, png_const_charp message) {
    png_reader *reader = png_get_error_ptr(png);
    snprintf(reader->message, sizeof reader->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/* Fills `out` from decoded rows (after packing/expansion to one byte per sample for bit depth < 16). */
static void png_rows_to_image(uint8_t *const *rows, int color_type, int bit_depth, png_const_colorp palette,
                              int n_palette, cc_image *out) {
    int width = out->width, height = out->height;
    int wide = bit_depth == 16; /* samples are two big-endian bytes; PIL keeps the high one */
    for (int y = 0; y < height; y++) {
        const uint8_t *row = rows[y];
        uint8_t *rgb = out->rgb + (size_t)y * width * 3;
        uint8_t *alpha = out->alpha ? out->alpha + (size_t)y * width : NULL;
        for (int x = 0; x < width; x++) {
            switch (color_type) {
            case PNG_COLOR_TYPE_GRAY:
                if (wide) {
                    unsigned value = (unsigned)row[2 * x] << 8 | row[2 * x + 1];
                    if (out->gray16) out->gray16[(size_t)y * width + x] = (uint16_t)value;
                    rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = (uint8_t)(value > 255 ? 255 : value);
                } else {
                    rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = row[x];
                }
                break;
            case PNG_COLOR_TYPE_PALETTE: {
                int index = row[x];
                /* an index past the PLTE entries reads as black, as in PIL's zero-filled palette */
                if (index < n_palette) {
                    rgb[3 * x] = palette[index].red;
                    rgb[3 * x + 1] = palette[index].green;
                    rgb[3 * x + 2] = palette[index].blue;
                } else {
                    rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = 0;
                }
                break;
            }
            case PNG_COLOR_TYPE_GRAY_ALPHA: {
                int step = wide ? 4 : 2;
                rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = row[step * x];
                if (alpha) alpha[x] = row[step * x + step / 2];
                break;
            }
            case PNG_COLOR_TYPE_RGB: {
                int step = wide ? 6 : 3;
                for (int c = 0; c < 3; c++) rgb[3 * x + c] = row[step * x + c * (step / 3)];
                break;
            }
            case PNG_COLOR_TYPE_RGB_ALPHA: {
                int step = wide ? 8 : 4;
                for (int c = 0; c < 3; c++) rgb[3 * x + c] = row[step * x + c * (step / 4)];
                if (alpha) alpha[x] = row[step * x + 3 * (step / 4)];
                break;
            }
            }
        }
    }
}

static cc_image_mode png_mode(int color_type, int bit_depth) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return bit_depth == 1 ? CC_IMAGE_1 : bit_depth == 16 ? CC_IMAGE_I : CC_IMAGE_L;
    case PNG_COLOR_TYPE_PALETTE: return CC_IMAGE_P;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return bit_depth == 16 ? CC_IMAGE_RGBA : CC_IMAGE_LA;
    case PNG_COLOR_TYPE_RGB_ALPHA: return CC_IMAGE_RGBA;
    default: return CC_IMAGE_RGB;
    }
}

static int decode_png(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                      cc_image *out) {
    png_reader reader = {data, size, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_error_to_message, png_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* volatile: these change between setjmp and a possible longjmp */
    uint8_t *volatile raw = NULL;
    uint8_t **volatile rows = NULL;
    volatile int have_image = 0;
    memset(out, 0, sizeof *out);
    if (!png || !info) {
        cc_set_error("%s: out of memory creating the PNG decoder", name);
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        cc_set_error("%s: corrupt PNG: %s", name, reader.message[0] ? reader.message : "decoder error");
        goto fail;
    }
    png_set_read_fn(png, &reader, png_read_from_memory);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);
    png_uint_32 width, height;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if (cc_image_check_dimensions(name, "PNG", width, height, options) != 0) goto fail;
    if (bit_depth < 8) {
        png_set_packing(png);
        if (color_type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    size_t raw_size;
    if (!cc_mul_size(row_bytes, height, &raw_size)) {
        cc_set_error("%s: PNG too large", name);
        goto fail;
    }
    if (cc_image_check_budget(name, "PNG", (int)width, (int)height, png_mode(color_type, bit_depth), raw_size, options) != 0)
        goto fail;
    raw = cc_malloc(raw_size, name);
    rows = cc_malloc(height * sizeof(uint8_t *), name);
    if (!raw || !rows) goto fail;
    for (png_uint_32 y = 0; y < height; y++) rows[y] = raw + y * row_bytes;
    png_read_image(png, rows);
    /* Chunks after the image data (up to IEND) are not read: like PIL, a file cut after its image
     * data is accepted. */
    png_colorp palette = NULL;
    int n_palette = 0;
    if (color_type == PNG_COLOR_TYPE_PALETTE && !png_get_PLTE(png, info, &palette, &n_palette)) {
        cc_set_error("%s: corrupt PNG: palette image without a PLTE chunk", name);
        goto fail;
    }
    if (cc_image_alloc(out, (int)width, (int)height, png_mode(color_type, bit_depth), options, name) != 0)
        goto fail;
    have_image = 1;
    png_rows_to_image(rows, color_type, bit_depth, palette, n_palette, out);
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    return 0;
fail:
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    if (have_image) cc_image_free(out);
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Entry points                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

/* One readable format: its signature test, decoder and header probe. */
typedef struct image_format {
    const char *name;
    int (*matches)(const uint8_t *data, size_t size);
    int (*decode)(const uint8_t *data, size_t size, const char *name, const cc_image_options *options, cc_image *out);
    int (*probe)(const uint8_t *data, size_t size, const char *name, int *width, int *height);
} image_format;

static int is_webp(const uint8_t *d, size_t n) { return n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4); }
static int is_gif(const uint8_t *d, size_t n) { return n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)); }
static int is_bmp(const uint8_t *d, size_t n) { return n >= 2 && d[0] == 'B' && d[1] == 'M'; }
static int is_tiff(const uint8_t *d, size_t n) {
    /* classic TIFF (42) and BigTIFF (43), either byte order */
    return n >= 4 && ((!memcmp(d, "II", 2) && (d[2] == 42 || d[2] == 43) && d[3] == 0) ||
                      (!memcmp(d, "MM", 2) && d[2] == 0 && (d[3] == 42 || d[3] == 43)));
}
static int probe_png(const uint8_t *data, size_t size, const char *name, int *width, int *height);
static int probe_jpeg(const uint8_t *data, size_t size, const char *name, int *width, int *height);

static const image_format FORMATS[] = {
    {"jpeg", is_jpeg, decode_jpeg, probe_jpeg},
    {"png", is_png, decode_png, probe_png},
    {"webp", is_webp, cc_decode_webp, cc_probe_webp},
    {"gif", is_gif, cc_decode_gif, cc_probe_gif},
    {"bmp", is_bmp, cc_decode_bmp, cc_probe_bmp},
    {"tiff", is_tiff, cc_decode_tiff, cc_probe_tiff},
};
#define N_FORMATS (sizeof FORMATS / sizeof FORMATS[0])
#define SUPPORTED_LIST "JPEG, PNG, WebP, GIF, BMP or TIFF"

static const image_format *find_format(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < N_FORMATS; i++)
        if (FORMATS[i].matches(data, size)) return &FORMATS[i];
    return NULL;
}

const char *cc_image_format(const void *data, size_t size) {
    const image_format *format = data ? find_format(data, size) : NULL;
    return format ? format->name : NULL;
}

int cc_image_decode_ex(const void *data, size_t size, const char *name, const cc_image_options *options,
                       cc_image *out) {
    const uint8_t *bytes = data;
    memset(out, 0, sizeof *out);
    if (!name) name = "image";
    if (size == 0 || !data) {
        cc_set_error("%s: empty file, not an image", name);
        return -1;
    }
    const image_format *format = find_format(bytes, size);
    if (!format) {
        cc_set_error("%s: not a " SUPPORTED_LIST " file (unrecognised signature)", name);
        return -1;
    }
    int rc = format->decode(bytes, size, name, options, out);
    if (rc != 0) cc_image_free(out);
    return rc;
}

int cc_image_decode(const void *data, size_t size, const char *name, cc_image *out) {
    return cc_image_decode_ex(data, size, name, NULL, out);
}

int cc_image_load_ex(const char *path, const cc_image_options *options, cc_image *out) {
    char *data;
    size_t size;
    memset(out, 0, sizeof *out);
    if (cc_read_file(path, &data, &size) != 0) return -1;
    int rc = cc_image_decode_ex(data, size, path, options, out);
    free(data);
    return rc;
}

int cc_image_load(const char *path, cc_image *out) { return cc_image_load_ex(path, NULL, out); }

static int read_be32(const uint8_t *p) { return (int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]); }

static int probe_png(const uint8_t *bytes, size_t size, const char *name, int *width, int *height) {
    if (size < 24 || memcmp(bytes + 12, "IHDR", 4) != 0) {
        cc_set_error("%s: corrupt PNG: no IHDR chunk", name);
        return -1;
    }
    *width = read_be32(bytes + 16);
    *height = read_be32(bytes + 20);
    return cc_image_check_dimensions(name, "PNG", *width, *height, NULL);
}

static int probe_jpeg(const uint8_t *bytes, size_t size, const char *name, int *width, int *height) {
    tjhandle tj = thread_decompressor();
    int subsamp = 0, colorspace = -1;
    if (!tj) return -1;
    if (tjDecompressHeader3(tj, bytes, (unsigned long)size, width, height, &subsamp, &colorspace) != 0) {
        cc_set_error("%s: corrupt JPEG header: %s", name, tjGetErrorStr2(tj));
        drop_thread_decompressor();
        return -1;
    }
    return cc_image_check_dimensions(name, "JPEG", *width, *height, NULL);
}

int cc_image_probe(const void *data, size_t size, const char *name, int *width, int *height) {
    const uint8_t *bytes = data;
    if (!name) name = "image";
    *width = *height = 0;
    const image_format *format = bytes && size ? find_format(bytes, size) : NULL;
    if (!format) {
        cc_set_error("%s: not a " SUPPORTED_LIST " file (unrecognised signature)", name);
        return -1;
    }
    return format->probe(bytes, size, name, width, height);
}

/* ---------------------------------------------------------------------------------------------- */
/* Writers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static int check_write_args(const uint8_t *pixels, int width, int height, int channels) {
    if (!pixels || width <= 0 || height <= 0 || (channels != 1 && channels != 3) ||
        (int64_t)width * height > CC_IMAGE_MAX_PIXELS) {
        cc_set_error("cannot encode a %dx%d image with %d channels", width, height, channels);
        return -1;
    }
    return 0;
}

int cc_image_encode_png(const uint8_t *pixels, int width, int height, int channels, uint8_t **out,
                        size_t *out_size) {
    *out = NULL;
    if (check_write_args(pixels, width, height, channels) != 0) return -1;
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        cc_set_error("PNG encoding failed: %s", image.message);
        return -1;
    }
    uint8_t *buffer = cc_malloc(size, "PNG file");
    if (!buffer) return -1;
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        cc_set_error("PNG encoding failed: %s", image.message);
        free(buffer);
        return -1;
    }
    *out = buffer;
    *out_size = size;
    return 0;
}

int cc_image_encode_jpeg(const uint8_t *pixels, int width, int height, int channels, int quality,
                         uint8_t **out, size_t *out_size) {
    *out = NULL;
    if (check_write_args(pixels, width, height, channels) != 0) return -1;
    if (quality < 1 || quality > 100) {
        cc_set_error("JPEG quality must be 1..100, got %d", quality);
        return -1;
    }
    tjhandle tj = tjInitCompress();
    if (!tj) {
        cc_set_error("cannot create a JPEG compressor: %s", tjGetErrorStr2(NULL));
        return -1;
    }
    unsigned char *jpeg = NULL;
    unsigned long jpeg_size = 0;
    int rc = tjCompress2(tj, pixels, width, width * channels, height, channels == 3 ? TJPF_RGB : TJPF_GRAY, &jpeg,
                         &jpeg_size, channels == 3 ? TJSAMP_420 : TJSAMP_GRAY, quality, TJFLAG_ACCURATEDCT);
    if (rc != 0) {
        cc_set_error("JPEG encoding failed: %s", tjGetErrorStr2(tj));
        tjFree(jpeg);
        tjDestroy(tj);
        return -1;
    }
    tjDestroy(tj);
    uint8_t *buffer = cc_malloc(jpeg_size, "JPEG file");
    if (buffer) memcpy(buffer, jpeg, jpeg_size);
    tjFree(jpeg);
    if (!buffer) return -1;
    *out = buffer;
    *out_size = jpeg_size;
    return 0;
}

static int write_encoded(const char *path, int rc, uint8_t *data, size_t size) {
    if (rc != 0) {
        cc_prefix_error("%s", path);
        return -1;
    }
    rc = cc_write_file_atomic(path, data, size);
    free(data);
    return rc;
}

int cc_image_write_png(const char *path, const uint8_t *pixels, int width, int height, int channels) {
    uint8_t *data;
    size_t size = 0;
    int rc = cc_image_encode_png(pixels, width, height, channels, &data, &size);
    return write_encoded(path, rc, data, size);
}

int cc_image_write_jpeg(const char *path, const uint8_t *pixels, int width, int height, int channels,
                        int quality) {
    uint8_t *data;
    size_t size = 0;
    int rc = cc_image_encode_jpeg(pixels, width, height, channels, quality, &data, &size);
    return write_encoded(path, rc, data, size);
}
