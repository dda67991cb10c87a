/* clip_resize.c — running a CLIP vision tower at another image size (multi-scale features).
 *
 * A ViT's only size-dependent weight is the position embedding: one row for the class token and one
 * per patch of the (image_size / patch_size)^2 grid. cc_clip_resized() makes a second model record that
 * shares every weight tensor of the original except that one, which it rebuilds for the new grid: the
 * class row is kept, the grid rows are treated as a [C, g, g] image and resized to [C, g', g'] with
 * bicubic interpolation exactly as PyTorch's F.interpolate(mode="bicubic", align_corners=False) computes
 * it (what Hugging Face's interpolate_pos_encoding uses). The reference test is tests/test_app_resize.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clip.h"
#include "engine/util.h"

#define RESIZE_MAX_IMAGE_SIZE 4096 /* largest image side accepted (a 4096/14 grid is already 85k tokens) */
#define CUBIC_A (-0.75)            /* PyTorch's bicubic constant (Keys' kernel with a = -0.75) */

/* Keys' cubic kernel for |x| <= 1 and 1 < |x| < 2 (PyTorch's cubic_convolution1/2). */
static double cubic_near(double x) { return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1; }
static double cubic_far(double x) { return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A; }

/* For each output coordinate: the first of the 4 input taps and their weights. Source coordinate
 * (dst + 0.5) * in / out - 0.5, not clamped (PyTorch does not clamp it for cubic); taps outside the
 * input read the nearest edge sample. */
typedef struct {
    int first;
    double w[4];
} cubic_taps;

static void compute_taps(int in_size, int out_size, cubic_taps *taps) {
    double scale = (double)in_size / (double)out_size;
    for (int o = 0; o < out_size; o++) {
        double src = scale * (o + 0.5) - 0.5;
        double base = floor(src), t = src - base;
        taps[o].first = (int)base - 1;
        taps[o].w[0] = cubic_far(t + 1);
        taps[o].w[1] = cubic_near(t);
        taps[o].w[2] = cubic_near(1 - t);
        taps[o].w[3] = cubic_far(2 - t);
    }
}

static int clamp_index(int i, int n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

int cc_bicubic_resize_rows(const float *src, int in_h, int in_w, int channels, int out_h, int out_w, float *dst) {
    if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 || channels < 1) {
        cc_set_error("bicubic resize: bad sizes %dx%d -> %dx%d with %d channels", in_h, in_w, out_h, out_w, channels);
        return -1;
    }
    cubic_taps *ty = cc_malloc((size_t)out_h * sizeof *ty, "bicubic taps");
    cubic_taps *tx = cc_malloc((size_t)out_w * sizeof *tx, "bicubic taps");
    double *acc = cc_malloc((size_t)channels * sizeof *acc, "bicubic row");
    if (!ty || !tx || !acc) {
        free(ty);
        free(tx);
        free(acc);
        return -1;
    }
    compute_taps(in_h, out_h, ty);
    compute_taps(in_w, out_w, tx);
    for (int oy = 0; oy < out_h; oy++)
        for (int ox = 0; ox < out_w; ox++) {
            memset(acc, 0, (size_t)channels * sizeof *acc);
            /* horizontal interpolation of four rows, then vertical, as PyTorch orders it */
            for (int j = 0; j < 4; j++) {
                int y = clamp_index(ty[oy].first + j, in_h);
                for (int i = 0; i < 4; i++) {
                    int x = clamp_index(tx[ox].first + i, in_w);
                    double w = ty[oy].w[j] * tx[ox].w[i];
                    const float *s = src + ((int64_t)y * in_w + x) * channels;
                    for (int c = 0; c < channels; c++) acc[c] += w * s[c];
                }
            }
            float *d = dst + ((int64_t)oy * out_w + ox) * channels;
            for (int c = 0; c < channels; c++) d[c] = (float)acc[c];
        }
    free(ty);
    free(tx);
    free(acc);
    return 0;
}

int cc_clip_interpolate_positions(const float *pos, int grid, int width, int new_grid, float *out) {
    memcpy(out, pos, (size_t)width * sizeof(float)); /* the class token's row */
    return cc_bicubic_resize_rows(pos + width, grid, grid, width, new_grid, new_grid, out + width);
}

int cc_clip_check_image_size(const cc_clip_config *cfg, int image_size) {
    const cc_clip_tower_config *v = &cfg->vision;
    if (image_size < v->patch_size || image_size > RESIZE_MAX_IMAGE_SIZE || image_size % v->patch_size != 0) {
        cc_set_error("image size %d: must be a multiple of the patch size %d between %d and %d", image_size,
                     v->patch_size, v->patch_size, RESIZE_MAX_IMAGE_SIZE);
        return -1;
    }
    int grid = image_size / v->patch_size;
    if (grid > CC_CLIP_MAX_GRID) {
        int64_t tokens = (int64_t)grid * grid + 1;
        double scratch_gb = 8.0 * (double)tokens * (double)tokens / 1e9; /* two [T, T] float panels */
        cc_set_error("image size %d: a %dx%d patch grid (%lld tokens, %.1f GB of attention scratch per thread); this "
                     "model (patch size %d) takes image sizes up to %d",
                     image_size, grid, grid, (long long)tokens, scratch_gb, v->patch_size, CC_CLIP_MAX_GRID * v->patch_size);
        return -1;
    }
    return 0;
}

cc_clip_model *cc_clip_resized(const cc_clip_model *m, int image_size) {
    const cc_clip_tower_config *v = &m->config.vision;
    if (cc_clip_check_image_size(&m->config, image_size) != 0) return NULL;
    int grid = v->image_size / v->patch_size, new_grid = image_size / v->patch_size, width = v->hidden_size;
    int64_t n_old = (int64_t)grid * grid + 1, n_new = (int64_t)new_grid * new_grid + 1;
    cc_clip_model *r = cc_calloc(1, sizeof *r, "resized CLIP model");
    float *old_rows = cc_malloc((size_t)(n_old * width) * sizeof(float), "position embedding");
    float *new_rows = cc_malloc((size_t)(n_new * width) * sizeof(float), "position embedding");
    cc_tensor *pos = NULL;
    if (!r || !old_rows || !new_rows) goto fail;
    *r = *m;
    r->cache = NULL;
    memset(&r->weights_file, 0, sizeof r->weights_file); /* the original keeps the mapping */
    r->config.vision.image_size = image_size;
    r->params = NULL, r->text_layers = NULL, r->vision_layers = NULL, r->vision_position_embedding = NULL;
    r->params = cc_malloc((size_t)m->n_params * sizeof *r->params, "parameter list");
    r->text_layers = cc_malloc((size_t)m->config.text.num_layers * sizeof *r->text_layers, "text layers");
    r->vision_layers = cc_malloc((size_t)v->num_layers * sizeof *r->vision_layers, "vision layers");
    if (!r->params || !r->text_layers || !r->vision_layers) goto fail;
    memcpy(r->params, m->params, (size_t)m->n_params * sizeof *r->params);
    memcpy(r->text_layers, m->text_layers, (size_t)m->config.text.num_layers * sizeof *r->text_layers);
    memcpy(r->vision_layers, m->vision_layers, (size_t)v->num_layers * sizeof *r->vision_layers);
    const cc_tensor *old = m->vision_position_embedding;
    pos = cc_tensor_new(CC_F32, 2, (int64_t[]){n_new, width}, old->name);
    if (!pos) goto fail;
    memcpy(pos->iparams, old->iparams, sizeof pos->iparams); /* tower and decay tags of clip.c's registry */
    pos->flags = old->flags & ~CC_FLAG_PARAM;                  /* not trainable */
    cc_backend *home = old->backend && !old->backend->host_memory ? old->backend : NULL;
    if (cc_tensor_download(old, old_rows) != 0 ||
        cc_clip_interpolate_positions(old_rows, grid, width, new_grid, new_rows) != 0 ||
        cc_tensor_alloc(pos, home) != 0 || cc_tensor_upload(pos, new_rows) != 0)
        goto fail;
    for (int i = 0; i < r->n_params; i++)
        if (r->params[i] == old) r->params[i] = pos;
    r->vision_position_embedding = pos;
    r->n_vision_params += (n_new - n_old) * width;
    free(old_rows);
    free(new_rows);
    return r;
fail:
    cc_prefix_error("resizing the vision tower to %d px", image_size);
    cc_tensor_free(pos);
    if (r) {
        free(r->params);
        free(r->text_layers);
        free(r->vision_layers);
    }
    free(r);
    free(old_rows);
    free(new_rows);
    return NULL;
}

void cc_clip_resized_free(cc_clip_model *r) {
    if (!r) return;
    cc_clip_clear_cache(r);
    free(r->cache);
    cc_tensor_free(r->vision_position_embedding);
    free(r->params);
    free(r->text_layers);
    free(r->vision_layers);
    free(r);
}
