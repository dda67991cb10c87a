/* preprocess.c — CLIP preprocessing, bit-exact to PIL 9.4 + torchvision (openai style) or Hugging Face's
 * CLIPImageProcessor (hf style); see preprocess.h.
 *
 * Layout of the file:
 *   1. resampling coefficients exactly as Pillow's precompute_coeffs / normalize_coeffs_8bpc compute them
 *   2. the 8-bit two-pass bicubic resize (horizontal pass, 8-bit rounding, vertical pass), window only
 *   3. the 32-bit resize PIL uses for 16-bit gray (mode "I"), nearest neighbour for modes P and 1,
 *      and premultiplied alpha for LA / RGBA
 *   4. crop offsets, normalisation, config loading, and the pipeline entry points
 * Integer sums are exact and order-independent, so the SIMD versions of the passes (resample_simd.c)
 * give the same bytes as the scalar definitions here.
 */
#include "data/preprocess.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "data/image_internal.h"
#include "data/resample.h"
#include "engine/util.h"

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* ---------------------------------------------------------------------------------------------- */
/* 1. Coefficients                                                                                */
/* ---------------------------------------------------------------------------------------------- */

/* Pillow's bicubic kernel, a = -0.5, support 2. Written with the same operations in the same order so
 * that every double is identical. */
static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}
#define BICUBIC_SUPPORT 2.0

void cc_resample_coeffs_free(cc_resample_coeffs *c) {
    free(c->start);
    free(c->weights);
    free(c->fixed);
    memset(c, 0, sizeof *c);
}

int cc_resample_coeffs_init(cc_resample_coeffs *c, int in_size, int out_size, int first, int count) {
    memset(c, 0, sizeof *c);
    /* Pillow passes the box as floats: (double)(in1 - in0) with in0 = 0.0f, in1 = (float)in_size */
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->first = first;
    c->count = count;
    c->ksize = ksize;
    c->kstride = (ksize + 7) & ~7; /* padded to whole SIMD vectors, the padding weights are 0 */
    c->start = cc_malloc((size_t)count * 2 * sizeof(int), "resample bounds");
    c->weights = cc_calloc((size_t)count * (size_t)c->kstride, sizeof(double), "resample weights");
    c->fixed = cc_calloc((size_t)count * (size_t)c->kstride, sizeof(int32_t), "resample weights");
    if (!c->start || !c->weights || !c->fixed) {
        cc_resample_coeffs_free(c);
        return -1;
    }
    c->n_taps = c->start + count;
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = c->weights + (size_t)i * c->kstride;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        int32_t *fixed = c->fixed + (size_t)i * c->kstride;
        for (int x = 0; x < xmax; x++) {
            double scaled = k[x] * (1 << CC_RESAMPLE_PRECISION_BITS);
            fixed[x] = k[x] < 0 ? (int32_t)(-0.5 + scaled) : (int32_t)(0.5 + scaled);
        }
        c->start[i] = xmin;
        c->n_taps[i] = xmax;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* 2. 8-bit two-pass resize                                                                       */
/* ---------------------------------------------------------------------------------------------- */

static inline uint8_t clip8(int32_t sum) {
    int32_t v = sum >> CC_RESAMPLE_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* The readable definitions; resample_simd.c has the fast versions with identical results. */
void cc_resample_horizontal_scalar(const uint8_t *src, size_t src_stride, int x_offset, int n_rows, int channels,
                                   const cc_resample_coeffs *c, uint8_t *dst, size_t dst_stride) {
    for (int y = 0; y < n_rows; y++) {
        const uint8_t *in = src + (size_t)y * src_stride;
        uint8_t *out = dst + (size_t)y * dst_stride;
        for (int i = 0; i < c->count; i++) {
            const int32_t *k = c->fixed + (size_t)i * c->kstride;
            const uint8_t *p = in + (size_t)(c->start[i] - x_offset) * channels;
            for (int ch = 0; ch < channels; ch++) {
                int32_t sum = 1 << (CC_RESAMPLE_PRECISION_BITS - 1);
                for (int t = 0; t < c->n_taps[i]; t++) sum += (int32_t)p[t * channels + ch] * k[t];
                out[i * channels + ch] = clip8(sum);
            }
        }
    }
}

void cc_resample_vertical_scalar(const uint8_t *src, size_t src_stride, int row_bytes, const cc_resample_coeffs *c,
                                 int first_row, uint8_t *dst, size_t dst_stride) {
    for (int i = 0; i < c->count; i++) {
        const int32_t *k = c->fixed + (size_t)i * c->kstride;
        const uint8_t *in = src + (size_t)(c->start[i] - first_row) * src_stride;
        uint8_t *out = dst + (size_t)i * dst_stride;
        for (int x = 0; x < row_bytes; x++) {
            int32_t sum = 1 << (CC_RESAMPLE_PRECISION_BITS - 1);
            for (int t = 0; t < c->n_taps[i]; t++) sum += (int32_t)in[(size_t)t * src_stride + x] * k[t];
            out[x] = clip8(sum);
        }
    }
}

/* The vertical coefficients of output rows [y0, y0 + window_height) (when the height changes) and the
 * input rows [*row_first, *row_last) they read — all the rows the horizontal pass has to produce. */
static int vertical_plan(int height, int out_height, int y0, int window_height, cc_resample_coeffs *vert, int *row_first,
                         int *row_last) {
    *row_first = y0;
    *row_last = y0 + window_height;
    if (out_height == height) return 0;
    if (cc_resample_coeffs_init(vert, height, out_height, y0, window_height) != 0) return -1;
    *row_first = vert->start[0];
    *row_last = 0;
    for (int i = 0; i < window_height; i++) { /* Pillow's taps move monotonically; do not rely on it */
        if (vert->start[i] < *row_first) *row_first = vert->start[i];
        if (vert->start[i] + vert->n_taps[i] > *row_last) *row_last = vert->start[i] + vert->n_taps[i];
    }
    return 0;
}

/* The pixels a resize reads: an image of width x height, of which `data` holds the columns from x0 and
 * the rows from y0 (all of it when x0 = y0 = 0 and stride = width * channels). */
typedef struct source_view {
    const uint8_t *data;
    size_t stride;
    int x0, y0;
    int width, height, channels;
} source_view;

static int resize_view(const source_view *src, int out_width, int out_height, int x0, int y0, int window_width,
                       int window_height, uint8_t *out) {
    int width = src->width, height = src->height, channels = src->channels;
    size_t out_stride = (size_t)window_width * channels;
    int need_horizontal = out_width != width, need_vertical = out_height != height;
    cc_resample_coeffs horiz = {0}, vert = {0};
    uint8_t *temp = NULL;
    int rc = -1;
    int row_first, row_last;
    if (vertical_plan(height, out_height, y0, window_height, &vert, &row_first, &row_last) != 0) goto done;
    const uint8_t *rows = src->data + (size_t)(row_first - src->y0) * src->stride;
    size_t rows_stride = src->stride;
    int col_offset = x0 - src->x0; /* the window's first column inside `rows` when there is no horizontal pass */
    if (need_horizontal) {
        if (cc_resample_coeffs_init(&horiz, width, out_width, x0, window_width) != 0) goto done;
        temp = cc_malloc((size_t)(row_last - row_first) * out_stride, "resize buffer");
        if (!temp) goto done;
        cc_resample_horizontal(rows, src->stride, src->x0, row_last - row_first, channels, &horiz, temp, out_stride);
        rows = temp;
        rows_stride = out_stride;
        col_offset = 0;
    }
    if (need_vertical) {
        cc_resample_vertical(rows + (size_t)col_offset * channels, rows_stride, window_width * channels, &vert,
                             row_first, out, out_stride);
    } else {
        for (int y = 0; y < window_height; y++)
            memcpy(out + (size_t)y * out_stride, rows + (size_t)(y + y0 - row_first) * rows_stride + (size_t)col_offset * channels,
                   out_stride);
    }
    rc = 0;
done:
    cc_resample_coeffs_free(&horiz);
    cc_resample_coeffs_free(&vert);
    free(temp);
    return rc;
}

int cc_resize_bicubic_u8(const uint8_t *src, int width, int height, int channels, int out_width, int out_height,
                         int x0, int y0, int window_width, int window_height, uint8_t *out) {
    if (channels < 1 || channels > 4 || width <= 0 || height <= 0 || out_width <= 0 || out_height <= 0 || x0 < 0 ||
        y0 < 0 || window_width <= 0 || window_height <= 0 || x0 + window_width > out_width ||
        y0 + window_height > out_height) {
        cc_set_error("resize: bad arguments (%dx%d -> %dx%d, window %d,%d %dx%d)", width, height, out_width,
                     out_height, x0, y0, window_width, window_height);
        return -1;
    }
    source_view view = {src, (size_t)width * channels, 0, 0, width, height, channels};
    return resize_view(&view, out_width, out_height, x0, y0, window_width, window_height, out);
}

/* The input columns [*x_first, *x_end) and rows [*y_first, *y_end) that the resize of output window
 * (x0, y0, window_width, window_height) reads. */
static int source_region(int width, int height, int out_width, int out_height, int x0, int y0, int window_width,
                         int window_height, int *x_first, int *x_end, int *y_first, int *y_end) {
    cc_resample_coeffs c = {0};
    if (vertical_plan(height, out_height, y0, window_height, &c, y_first, y_end) != 0) return -1;
    cc_resample_coeffs_free(&c);
    *x_first = x0;
    *x_end = x0 + window_width;
    if (out_width == width) return 0;
    if (cc_resample_coeffs_init(&c, width, out_width, x0, window_width) != 0) return -1;
    *x_first = c.start[0];
    *x_end = 0;
    for (int i = 0; i < window_width; i++) {
        if (c.start[i] < *x_first) *x_first = c.start[i];
        if (c.start[i] + c.n_taps[i] > *x_end) *x_end = c.start[i] + c.n_taps[i];
    }
    cc_resample_coeffs_free(&c);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* 3. The other PIL modes                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* PIL's ROUND_UP for the 32-bit resampler. */
static inline int32_t round_up(double f) { return (int32_t)(f >= 0.0 ? f + 0.5F : f - 0.5F); }

/* Mode "I" (16-bit gray PNG): double weights, rounding to int32 after each pass; the window of the
 * result is clipped to 0..255 as i2rgb does and replicated into RGB. */
static int resize_gray16(const cc_image *img, int out_width, int out_height, int x0, int y0, int window_width,
                         int window_height, uint8_t *out) {
    int width = img->width, height = img->height;
    int need_horizontal = out_width != width, need_vertical = out_height != height;
    cc_resample_coeffs horiz = {0}, vert = {0};
    int32_t *temp = NULL;
    int rc = -1;
    int row_first, row_last;
    if (vertical_plan(height, out_height, y0, window_height, &vert, &row_first, &row_last) != 0) goto done;
    int temp_width = need_horizontal ? window_width : width;
    temp = cc_malloc((size_t)(row_last - row_first) * temp_width * sizeof(int32_t), "resize buffer");
    if (!temp) goto done;
    if (need_horizontal) {
        if (cc_resample_coeffs_init(&horiz, width, out_width, x0, window_width) != 0) goto done;
        for (int y = row_first; y < row_last; y++) {
            const uint16_t *in = img->gray16 + (size_t)y * width;
            for (int i = 0; i < window_width; i++) {
                const double *k = horiz.weights + (size_t)i * horiz.kstride;
                double sum = 0.0;
                for (int t = 0; t < horiz.n_taps[i]; t++) sum += in[horiz.start[i] + t] * k[t];
                temp[(size_t)(y - row_first) * temp_width + i] = round_up(sum);
            }
        }
    } else {
        for (int y = row_first; y < row_last; y++)
            for (int x = 0; x < width; x++) temp[(size_t)(y - row_first) * temp_width + x] = img->gray16[(size_t)y * width + x];
    }
    int col_offset = need_horizontal ? 0 : x0;
    for (int j = 0; j < window_height; j++) {
        for (int i = 0; i < window_width; i++) {
            int32_t value;
            if (need_vertical) {
                const double *k = vert.weights + (size_t)j * vert.kstride;
                double sum = 0.0;
                for (int t = 0; t < vert.n_taps[j]; t++)
                    sum += temp[(size_t)(vert.start[j] - row_first + t) * temp_width + col_offset + i] * k[t];
                value = round_up(sum);
            } else {
                value = temp[(size_t)(j + y0 - row_first) * temp_width + col_offset + i];
            }
            uint8_t v = (uint8_t)(value <= 0 ? 0 : value >= 255 ? 255 : value);
            uint8_t *px = out + ((size_t)j * window_width + i) * 3;
            px[0] = px[1] = px[2] = v;
        }
    }
    rc = 0;
done:
    cc_resample_coeffs_free(&horiz);
    cc_resample_coeffs_free(&vert);
    free(temp);
    return rc;
}

/* PIL's nearest-neighbour resize (ImagingScaleAffine): source positions accumulate in double from the
 * first output pixel; positions outside the source stay black. Used for modes P and 1. */
static int resize_nearest(const cc_image *img, int out_width, int out_height, int x0, int y0, int window_width,
                          int window_height, uint8_t *out) {
    int *xin = cc_malloc((size_t)out_width * sizeof(int), "resize table");
    if (!xin) return -1;
    double ax = (double)((float)img->width - 0.0f) / out_width;
    double ay = (double)((float)img->height - 0.0f) / out_height;
    double xo = 0.0 + ax * 0.5;
    for (int x = 0; x < out_width; x++) {
        xin[x] = xo < 0.0 ? -1 : (int)xo;
        xo += ax;
    }
    double yo = 0.0 + ay * 0.5;
    for (int y = 0; y < y0 + window_height; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        yo += ay;
        if (y < y0) continue;
        uint8_t *row = out + (size_t)(y - y0) * window_width * 3;
        for (int i = 0; i < window_width; i++) {
            int xi = xin[x0 + i];
            if (yi >= 0 && yi < img->height && xi >= 0 && xi < img->width)
                memcpy(row + 3 * i, img->rgb + ((size_t)yi * img->width + xi) * 3, 3);
            else
                memset(row + 3 * i, 0, 3);
        }
    }
    free(xin);
    return 0;
}

static inline uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned tmp = a * b + 128;
    return (uint8_t)(((tmp >> 8) + tmp) >> 8);
}

/* Premultiplied-alpha resize of LA / RGBA (PIL converts to La / RGBa, resizes, converts back), then the
 * alpha is dropped. `channels` of colour: 1 for LA (gray replicated), 3 for RGBA. */
static int resize_premultiplied(const cc_image *img, int out_width, int out_height, int x0, int y0,
                                int window_width, int window_height, uint8_t *out) {
    int colour = img->mode == CC_IMAGE_LA ? 1 : 3, channels = colour + 1;
    size_t n_pixels = (size_t)img->width * img->height;
    uint8_t *premul = cc_malloc(n_pixels * channels, "premultiplied image");
    uint8_t *resized = cc_malloc((size_t)window_width * window_height * channels, "resize buffer");
    int rc = -1;
    if (!premul || !resized) goto done;
    for (size_t i = 0; i < n_pixels; i++) {
        unsigned alpha = img->alpha[i];
        for (int c = 0; c < colour; c++) premul[i * channels + c] = muldiv255(img->rgb[i * 3 + c], alpha);
        premul[i * channels + colour] = (uint8_t)alpha;
    }
    if (cc_resize_bicubic_u8(premul, img->width, img->height, channels, out_width, out_height, x0, y0, window_width,
                             window_height, resized) != 0)
        goto done;
    for (size_t i = 0; i < (size_t)window_width * window_height; i++) {
        unsigned alpha = resized[i * channels + colour];
        for (int c = 0; c < 3; c++) {
            unsigned v = resized[i * channels + (colour == 1 ? 0 : c)];
            if (alpha != 255 && alpha != 0) {
                v = 255 * v / alpha;
                if (v > 255) v = 255;
            }
            out[i * 3 + c] = (uint8_t)v;
        }
    }
    rc = 0;
done:
    free(premul);
    free(resized);
    return rc;
}

/* CMYK JPEG: PIL resizes the four CMYK channels, then converts to RGB. */
static int resize_cmyk(const cc_image *img, int out_width, int out_height, int x0, int y0, int window_width,
                       int window_height, uint8_t *out) {
    size_t n_out = (size_t)window_width * window_height;
    uint8_t *resized = cc_malloc(n_out * 4, "resize buffer");
    if (!resized) return -1;
    int rc = cc_resize_bicubic_u8(img->cmyk, img->width, img->height, 4, out_width, out_height, x0, y0, window_width,
                                  window_height, resized);
    if (rc == 0)
        for (size_t i = 0; i < n_out; i++) {
            unsigned nk = 255u - resized[4 * i + 3];
            for (int c = 0; c < 3; c++) out[3 * i + c] = (uint8_t)(nk - muldiv255(resized[4 * i + c], nk));
        }
    free(resized);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* 4. Pipeline                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

int cc_preprocess_style_parse(const char *text, cc_preprocess_style *style) {
    if (text && !strcmp(text, "openai")) *style = CC_PREPROCESS_OPENAI;
    else if (text && !strcmp(text, "hf")) *style = CC_PREPROCESS_HF;
    else {
        cc_set_error("the preprocessing style must be openai (clip.load's transform) or hf (transformers' "
                     "CLIPImageProcessor), got '%s'", text ? text : "");
        return -1;
    }
    return 0;
}

const char *cc_preprocess_style_name(cc_preprocess_style style) { return style == CC_PREPROCESS_HF ? "hf" : "openai"; }

void cc_preprocess_config_default(cc_preprocess_config *cfg, int size) {
    memset(cfg, 0, sizeof *cfg);
    if (size <= 0) size = CC_CLIP_IMAGE_SIZE;
    cfg->size = cfg->crop_height = cfg->crop_width = size;
    memcpy(cfg->mean, CLIP_MEAN, sizeof cfg->mean);
    memcpy(cfg->std, CLIP_STD, sizeof cfg->std);
    cfg->style = CC_PREPROCESS_OPENAI;
}

void cc_preprocess_resized_size(int size, int width, int height, int *out_width, int *out_height) {
    /* torchvision _compute_resized_output_size / HF get_resize_output_image_size:
     * new_long = int(size * long / short), a true division then truncation */
    int shorter = width <= height ? width : height, longer = width <= height ? height : width;
    int new_long = (int)((double)size * (double)longer / (double)shorter);
    if (width <= height) {
        *out_width = size;
        *out_height = new_long;
    } else {
        *out_width = new_long;
        *out_height = size;
    }
}

/* Offset of the crop inside the resized image; negative when the crop is larger (zero padding). */
static int crop_offset(cc_preprocess_style style, int resized, int crop) {
    int diff = resized - crop;
    if (diff < 0) {
        /* torchvision pads (crop - size) // 2 on the left / top; HF places the image at ceil(pad / 2) */
        int pad = -diff;
        return style == CC_PREPROCESS_HF ? -((pad + 1) / 2) : -(pad / 2);
    }
    if (style == CC_PREPROCESS_HF) return diff / 2;
    /* int(round(diff / 2.0)) with Python's round half to even */
    int half = diff / 2;
    if (diff % 2 == 1 && half % 2 == 1) half++;
    return half;
}

static int check_config(const cc_preprocess_config *cfg) {
    if (cfg->size <= 0 || cfg->size > CC_PREPROCESS_MAX_SIZE || cfg->crop_height <= 0 ||
        cfg->crop_height > CC_PREPROCESS_MAX_SIZE || cfg->crop_width <= 0 || cfg->crop_width > CC_PREPROCESS_MAX_SIZE) {
        cc_set_error("preprocess: bad sizes (size %d, crop %dx%d; each must be 1..%d)", cfg->size, cfg->crop_height,
                     cfg->crop_width, CC_PREPROCESS_MAX_SIZE);
        return -1;
    }
    for (int c = 0; c < 3; c++)
        if (!(cfg->std[c] > 0) || !isfinite(cfg->mean[c])) {
            cc_set_error("preprocess: bad normalisation (std must be > 0, mean finite)");
            return -1;
        }
    return 0;
}

/* Where the crop of a width x height image lies: the resized size, the crop's offset in it (negative
 * when the crop is larger: zero padding), and the window of the crop inside the resized image. */
typedef struct crop_geometry {
    int resized_w, resized_h, left, top;
    int x_first, y_first, window_w, window_h;
    int padded;
} crop_geometry;

static int plan_crop(const cc_preprocess_config *cfg, int width, int height, crop_geometry *g) {
    cc_preprocess_resized_size(cfg->size, width, height, &g->resized_w, &g->resized_h);
    if (g->resized_w <= 0 || g->resized_h <= 0 || g->resized_w > CC_PREPROCESS_MAX_SIZE * 64 ||
        g->resized_h > CC_PREPROCESS_MAX_SIZE * 64) {
        cc_set_error("preprocess: a %dx%d image cannot be resized to shorter side %d", width, height, cfg->size);
        return -1;
    }
    int crop_w = cfg->crop_width, crop_h = cfg->crop_height;
    g->left = crop_offset(cfg->style, g->resized_w, crop_w);
    g->top = crop_offset(cfg->style, g->resized_h, crop_h);
    g->x_first = g->left < 0 ? 0 : g->left;
    g->y_first = g->top < 0 ? 0 : g->top;
    int x_end = g->left + crop_w < g->resized_w ? g->left + crop_w : g->resized_w;
    int y_end = g->top + crop_h < g->resized_h ? g->top + crop_h : g->resized_h;
    g->window_w = x_end - g->x_first;
    g->window_h = y_end - g->y_first;
    g->padded = g->window_w != crop_w || g->window_h != crop_h;
    return 0;
}

/* The window buffer: `out` itself, or a separate one when the crop is padded. */
static uint8_t *window_buffer(const crop_geometry *g, uint8_t *out) {
    return g->padded ? cc_malloc((size_t)g->window_w * g->window_h * 3, "crop buffer") : out;
}

/* Places the window into the zero-padded crop and frees it (when it was a separate buffer). */
static void finish_window(const cc_preprocess_config *cfg, const crop_geometry *g, uint8_t *window, uint8_t *out) {
    if (!g->padded) return;
    int crop_w = cfg->crop_width;
    memset(out, 0, (size_t)crop_w * cfg->crop_height * 3);
    for (int y = 0; y < g->window_h; y++)
        memcpy(out + ((size_t)(y + g->y_first - g->top) * crop_w + (g->x_first - g->left)) * 3,
               window + (size_t)y * g->window_w * 3, (size_t)g->window_w * 3);
    free(window);
}

int cc_preprocess_image_u8(const cc_preprocess_config *cfg, const cc_image *img, uint8_t *out) {
    if (check_config(cfg) != 0) return -1;
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0) {
        cc_set_error("preprocess: empty image");
        return -1;
    }
    crop_geometry g;
    if (plan_crop(cfg, img->width, img->height, &g) != 0) return -1;
    uint8_t *window = window_buffer(&g, out);
    if (!window) return -1;
    int rc;
    int resized_w = g.resized_w, resized_h = g.resized_h, x0 = g.x_first, y0 = g.y_first, ww = g.window_w, wh = g.window_h;
    /* PIL returns a copy when the size does not change: no premultiplication, no mode-specific path */
    int openai = cfg->style == CC_PREPROCESS_OPENAI && (resized_w != img->width || resized_h != img->height);
    if (openai && (img->mode == CC_IMAGE_P || img->mode == CC_IMAGE_1))
        rc = resize_nearest(img, resized_w, resized_h, x0, y0, ww, wh, window);
    else if (openai && img->alpha && (img->mode == CC_IMAGE_LA || img->mode == CC_IMAGE_RGBA))
        rc = resize_premultiplied(img, resized_w, resized_h, x0, y0, ww, wh, window);
    else if (openai && img->gray16 && img->mode == CC_IMAGE_I)
        rc = resize_gray16(img, resized_w, resized_h, x0, y0, ww, wh, window);
    else if (openai && img->cmyk && img->mode == CC_IMAGE_CMYK)
        rc = resize_cmyk(img, resized_w, resized_h, x0, y0, ww, wh, window);
    else
        rc = cc_resize_bicubic_u8(img->rgb, img->width, img->height, 3, resized_w, resized_h, x0, y0, ww, wh, window);
    if (rc == 0) finish_window(cfg, &g, window, out);
    else if (window != out) free(window);
    return rc;
}

/* A JPEG (RGB or gray) without fast decoding: decode only the rows and columns the crop's resize reads.
 * Returns 1 when done, 0 when this path does not apply, -1 on error. */
static int preprocess_jpeg_region(const cc_preprocess_config *cfg, const void *data, size_t size, const char *name,
                                  uint8_t *out) {
    int width, height;
    int handled = cc_jpeg_region_probe(data, size, name, &width, &height);
    if (handled <= 0) return handled;
    crop_geometry g;
    int x_first, x_end, y_first, y_end;
    if (plan_crop(cfg, width, height, &g) != 0 ||
        source_region(width, height, g.resized_w, g.resized_h, g.x_first, g.y_first, g.window_w, g.window_h, &x_first,
                      &x_end, &y_first, &y_end) != 0) {
        cc_prefix_error("%s", name ? name : "image");
        return -1;
    }
    cc_image_region region;
    if (cc_jpeg_decode_region(data, size, name, x_first, x_end, y_first, y_end, &region) != 0) return -1;
    uint8_t *window = window_buffer(&g, out);
    int rc = -1;
    if (window) {
        source_view view = {region.rgb, (size_t)region.width * 3, region.x0, region.y0, width, height, 3};
        rc = resize_view(&view, g.resized_w, g.resized_h, g.x_first, g.y_first, g.window_w, g.window_h, window);
        if (rc == 0) finish_window(cfg, &g, window, out);
        else if (window != out) free(window);
    }
    free(region.rgb);
    if (rc != 0) cc_prefix_error("%s", name ? name : "image");
    return rc == 0 ? 1 : -1;
}

void cc_preprocess_normalize(const cc_preprocess_config *cfg, const uint8_t *rgb, int height, int width, float *out) {
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            /* openai: ToTensor divides in float32; HF rescales in float64 then casts to float32 */
            float x = cfg->style == CC_PREPROCESS_HF ? (float)((double)v * (1.0 / 255.0)) : (float)v / 255.0f;
            table[c][v] = (x - cfg->mean[c]) / cfg->std[c];
        }
    size_t plane = (size_t)height * width;
    for (size_t i = 0; i < plane; i++) {
        out[i] = table[0][rgb[3 * i]];
        out[plane + i] = table[1][rgb[3 * i + 1]];
        out[2 * plane + i] = table[2][rgb[3 * i + 2]];
    }
}

int cc_preprocess_image(const cc_preprocess_config *cfg, const cc_image *img, float *out) {
    if (check_config(cfg) != 0) return -1;
    uint8_t *rgb = cc_malloc((size_t)cfg->crop_height * cfg->crop_width * 3, "preprocess buffer");
    if (!rgb) return -1;
    int rc = cc_preprocess_image_u8(cfg, img, rgb);
    if (rc == 0) cc_preprocess_normalize(cfg, rgb, cfg->crop_height, cfg->crop_width, out);
    free(rgb);
    return rc;
}

static void image_options_for(const cc_preprocess_config *cfg, cc_image_options *options) {
    memset(options, 0, sizeof *options);
    if (cfg->fast_decode) options->fast_min_side = cfg->size;
    /* the HF processor converts to RGB first: the extra planes would not be used */
    options->rgb_only = cfg->style == CC_PREPROCESS_HF;
}

int cc_preprocess_memory(const cc_preprocess_config *cfg, const void *data, size_t size, const char *name,
                         float *out) {
    if (check_config(cfg) != 0) return -1;
    if (!name) name = "image";
    if (!cfg->fast_decode) {
        uint8_t *rgb = cc_malloc((size_t)cfg->crop_height * cfg->crop_width * 3, "preprocess buffer");
        if (!rgb) return -1;
        int done = preprocess_jpeg_region(cfg, data, size, name, rgb);
        if (done > 0) cc_preprocess_normalize(cfg, rgb, cfg->crop_height, cfg->crop_width, out);
        free(rgb);
        if (done != 0) return done > 0 ? 0 : -1;
    }
    cc_image_options options;
    image_options_for(cfg, &options);
    cc_image img;
    if (cc_image_decode_ex(data, size, name, &options, &img) != 0) return -1;
    int rc = cc_preprocess_image(cfg, &img, out);
    if (rc != 0) cc_prefix_error("%s", name ? name : "image");
    cc_image_free(&img);
    return rc;
}

int cc_preprocess_file(const cc_preprocess_config *cfg, const char *path, float *out) {
    char *data;
    size_t size;
    if (cc_read_file(path, &data, &size) != 0) return -1;
    int rc = cc_preprocess_memory(cfg, data, size, path, out);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* preprocessor_config.json                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* A JSON number that is a whole number in int range: 1 and *out set, else -1 (the range is checked
 * before the conversion, which is undefined for values out of range). */
static int json_whole_int(double v, int *out) {
    if (!(v >= INT_MIN && v <= INT_MAX) || v != (double)(int)v) return -1;
    *out = (int)v;
    return 1;
}

/* An int, or an object holding one of `keys` (first found); 0 = absent, -1 = malformed. */
static int json_size(const cJSON *item, const char *const *keys, int *out) {
    if (!item) return 0;
    if (cJSON_IsNumber(item)) return json_whole_int(item->valuedouble, out);
    if (cJSON_IsObject(item))
        for (int i = 0; keys[i]; i++) {
            const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, keys[i]);
            if (cJSON_IsNumber(value)) return json_whole_int(value->valuedouble, out);
        }
    return -1;
}

static int json_triple(const cJSON *item, float out[3]) {
    if (!item) return 0;
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 3) return -1;
    for (int c = 0; c < 3; c++) {
        const cJSON *value = cJSON_GetArrayItem(item, c);
        if (!cJSON_IsNumber(value)) return -1;
        out[c] = (float)value->valuedouble;
    }
    return 1;
}

int cc_preprocess_config_load(const char *path, cc_preprocess_config *cfg) {
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/preprocessor_config.json", path);
    else
        snprintf(file, sizeof file, "%s", path);
    char *text;
    size_t size;
    if (cc_read_file(file, &text, &size) != 0) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t offset = end && end >= text ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < offset && i < size; i++) line += text[i] == '\n';
        cc_set_error("%s: malformed JSON near line %d (byte %zu)", file, line, offset);
        cJSON_Delete(root);
        free(text);
        return -1;
    }
    cc_preprocess_config loaded;
    cc_preprocess_config_default(&loaded, 0);
    loaded.style = cfg->style;
    loaded.fast_decode = cfg->fast_decode;
    static const char *const size_keys[] = {"shortest_edge", NULL};
    static const char *const crop_h_keys[] = {"height", NULL};
    static const char *const crop_w_keys[] = {"width", NULL};
    const char *bad = NULL;
    int crop_size = 0;
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    const cJSON *resample = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (json_size(cJSON_GetObjectItemCaseSensitive(root, "size"), size_keys, &loaded.size) < 0) bad = "size";
    else if (cJSON_IsNumber(crop)) {
        if (json_size(crop, size_keys, &crop_size) < 0) bad = "crop_size";
        loaded.crop_height = loaded.crop_width = crop_size;
    } else if (crop) {
        if (json_size(crop, crop_h_keys, &loaded.crop_height) <= 0 || json_size(crop, crop_w_keys, &loaded.crop_width) <= 0)
            bad = "crop_size";
    } else {
        loaded.crop_height = loaded.crop_width = loaded.size;
    }
    if (!bad && json_triple(cJSON_GetObjectItemCaseSensitive(root, "image_mean"), loaded.mean) < 0) bad = "image_mean";
    if (!bad && json_triple(cJSON_GetObjectItemCaseSensitive(root, "image_std"), loaded.std) < 0) bad = "image_std";
    if (!bad && resample && (!cJSON_IsNumber(resample) || resample->valuedouble != 3)) bad = "resample (only 3 = bicubic is supported)";
    cJSON_Delete(root);
    free(text);
    if (bad) {
        cc_set_error("%s: bad or unsupported value for %s", file, bad);
        return -1;
    }
    if (check_config(&loaded) != 0) {
        cc_prefix_error("%s", file);
        return -1;
    }
    *cfg = loaded;
    return 0;
}

int cc_preprocess_config_save(const cc_preprocess_config *cfg, const char *path) {
    /* Hugging Face CLIPImageProcessor's preprocessor_config.json */
    cJSON *root = cJSON_CreateObject();
    cJSON *crop = cJSON_AddObjectToObject(root, "crop_size");
    cJSON_AddNumberToObject(crop, "height", cfg->crop_height);
    cJSON_AddNumberToObject(crop, "width", cfg->crop_width);
    cJSON_AddBoolToObject(root, "do_center_crop", 1);
    cJSON_AddBoolToObject(root, "do_convert_rgb", 1);
    cJSON_AddBoolToObject(root, "do_normalize", 1);
    cJSON_AddBoolToObject(root, "do_rescale", 1);
    cJSON_AddBoolToObject(root, "do_resize", 1);
    cJSON *mean = cJSON_AddArrayToObject(root, "image_mean"), *std = cJSON_AddArrayToObject(root, "image_std");
    for (int c = 0; c < 3; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(cfg->mean[c]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(cfg->std[c]));
    }
    cJSON_AddStringToObject(root, "image_processor_type", "CLIPImageProcessor");
    cJSON_AddNumberToObject(root, "resample", 3);
    cJSON_AddNumberToObject(root, "rescale_factor", 1.0 / 255.0);
    cJSON *size = cJSON_AddObjectToObject(root, "size");
    cJSON_AddNumberToObject(size, "shortest_edge", cfg->size);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        cc_set_error("%s: out of memory", path);
        return -1;
    }
    int status = cc_write_file_atomic(path, text, strlen(text));
    free(text);
    return status;
}
