/* clipc_api.c — the public library API (include/clipc.h) on top of cc_session. */
#include "include/clipc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session.h"
#include "index/index.h"
#include "engine/util.h"

struct clipc_model {
    cc_session session;
};

clipc_model *clipc_open(const char *model_dir, const char *device) {
    clipc_model *m = cc_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    if (cc_session_open(&m->session, model_dir, device) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void clipc_close(clipc_model *model) {
    if (!model) return;
    cc_session_close(&model->session);
    free(model);
}

int clipc_dim(const clipc_model *model) { return model->session.model->config.projection_dim; }

int clipc_embed_texts(clipc_model *model, const char *const *texts, int n, float *out) {
    cc_text_options options = {.normalize = 1};
    return cc_session_embed_texts(&model->session, texts, n, &options, out, NULL);
}

int clipc_embed_text(clipc_model *model, const char *text, float *out) { return clipc_embed_texts(model, &text, 1, out); }

int clipc_embed_image_file(clipc_model *model, const char *path, float *out) {
    cc_image_embed_options options = {.batch = 1, .normalize = 1, .n_workers = 1};
    int64_t kept = 0;
    return cc_session_embed_image_files(&model->session, &path, 1, &options, out, NULL, &kept);
}

int clipc_set_style(clipc_model *model, const char *style) {
    return cc_preprocess_style_parse(style, &model->session.preprocess.style);
}

float clipc_similarity(const clipc_model *model, const float *a, const float *b) {
    int dim = clipc_dim(model);
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < dim; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return na > 0 && nb > 0 ? (float)(dot / sqrt(na * nb)) : 0.0f;
}

const char *clipc_last_error(void) { return cc_last_error(); }

void clipc_set_threads(int n_threads) { cc_set_threads(n_threads); }

/* ---------------------------------------------------------------- bindings and array inputs */

#define RGB_BATCH 32 /* images per forward pass, as `clipc embed` */

/* The public header uses int and long long for the library's int32_t and int64_t arrays. */
_Static_assert(sizeof(int) == sizeof(int32_t), "clipc_tokenize passes int32_t ids as int");
_Static_assert(sizeof(long long) == sizeof(int64_t), "the index functions pass int64_t ids as long long");

int clipc_context_length(const clipc_model *model) { return model->session.model->config.text.max_positions; }

int clipc_tokenize(clipc_model *model, const char *const *texts, int n, int *ids, int *eot_pos) {
    int context = clipc_context_length(model), n_truncated = 0;
    for (int i = 0; i < n; i++) {
        int eot = 0, truncated = 0;
        if (cc_tokenizer_encode_context(model->session.tokenizer, texts[i], context, (int32_t *)ids + (int64_t)i * context,
                                        &eot, &truncated, NULL) < 0) {
            cc_prefix_error("caption %d", i + 1);
            return -1;
        }
        if (eot_pos) eot_pos[i] = eot;
        n_truncated += truncated != 0;
    }
    return n_truncated;
}

int clipc_embed_image_files(clipc_model *model, const char *const *paths, int n, float *out) {
    cc_image_embed_options options = {.normalize = 1};
    int64_t kept = 0;
    return cc_session_embed_image_files(&model->session, paths, n, &options, out, NULL, &kept);
}

/* Preprocesses images [first, first + count) into pixels [count][C][S][S]. */
static int preprocess_rgb(const cc_session *s, const unsigned char *const *rgb, const int *widths, const int *heights,
                          int first, int count, float *pixels) {
    const cc_clip_tower_config *v = &s->model->config.vision;
    int64_t per_image = (int64_t)v->num_channels * v->image_size * v->image_size;
    for (int i = 0; i < count; i++) {
        int at = first + i;
        if (!rgb[at] || widths[at] <= 0 || heights[at] <= 0 || (int64_t)widths[at] * heights[at] > CC_IMAGE_MAX_PIXELS) {
            cc_set_error("image %d: %dx%d pixels is not a valid RGB image", at, widths[at], heights[at]);
            return -1;
        }
        cc_image img = {.width = widths[at], .height = heights[at], .rgb = (uint8_t *)rgb[at], .mode = CC_IMAGE_RGB,
                        .scale_denom = 1};
        if (cc_preprocess_image(&s->preprocess, &img, pixels + i * per_image) != 0) {
            cc_prefix_error("image %d", at);
            return -1;
        }
    }
    return 0;
}

int clipc_embed_images_rgb(clipc_model *model, int n, const unsigned char *const *rgb, const int *widths,
                           const int *heights, float *out) {
    cc_session *s = &model->session;
    const cc_clip_tower_config *v = &s->model->config.vision;
    int64_t per_image = (int64_t)v->num_channels * v->image_size * v->image_size, dim = clipc_dim(model);
    float *pixels = cc_malloc((size_t)(per_image * (n < RGB_BATCH ? (n > 0 ? n : 1) : RGB_BATCH)) * sizeof(float), "pixels");
    if (!pixels) return -1;
    int status = 0;
    for (int first = 0; first < n && status == 0; first += RGB_BATCH) {
        int count = n - first < RGB_BATCH ? n - first : RGB_BATCH;
        status = preprocess_rgb(s, rgb, widths, heights, first, count, pixels);
        if (status == 0) status = cc_clip_embed_images(s->model, pixels, count, out + first * dim, 1);
    }
    free(pixels);
    return status;
}

int clipc_image_size(const clipc_model *model) { return model->session.model->config.vision.image_size; }

int clipc_embed_pixels(clipc_model *model, int n, const float *pixels, float *out) {
    const cc_clip_tower_config *v = &model->session.model->config.vision;
    int64_t per_image = (int64_t)v->num_channels * v->image_size * v->image_size, dim = clipc_dim(model);
    int status = 0;
    for (int first = 0; first < n && status == 0; first += RGB_BATCH) {
        int count = n - first < RGB_BATCH ? n - first : RGB_BATCH;
        status = cc_clip_embed_images(model->session.model, pixels + first * per_image, count, out + first * dim, 1);
    }
    return status;
}

/* ---------------------------------------------------------------- vector indexes */

/* A clipc_index is a cc_index (the public name keeps index/index.h out of the public header). */
#define AS_INDEX(p) ((cc_index *)(p))

clipc_index *clipc_index_new(const char *desc, int dim, int metric) {
    if (metric != CC_METRIC_IP && metric != CC_METRIC_L2) {
        cc_set_error("index metric %d: use 0 (inner product) or 1 (squared L2)", metric);
        return NULL;
    }
    return (clipc_index *)cc_index_create(desc, dim, (cc_metric)metric);
}

int clipc_index_train(clipc_index *index, long long n, const float *x) { return cc_index_train(AS_INDEX(index), n, x); }

int clipc_index_add(clipc_index *index, long long n, const float *x, const long long *ids) {
    return ids ? cc_index_add_with_ids(AS_INDEX(index), n, x, (const int64_t *)ids) : cc_index_add(AS_INDEX(index), n, x);
}

long long clipc_index_remove(clipc_index *index, long long n, const long long *ids) {
    return cc_index_remove(AS_INDEX(index), n, (const int64_t *)ids);
}

int clipc_index_search(const clipc_index *index, long long nq, const float *queries, int k, float *out_scores,
                       long long *out_ids) {
    if (cc_check_finite(queries, nq, cc_index_dim(AS_INDEX(index)), "queries") != 0) return -1;
    return cc_index_search(AS_INDEX(index), nq, queries, k, (int64_t *)out_ids, out_scores);
}

int clipc_index_set_param(clipc_index *index, const char *name, long long value) {
    return cc_index_set_param(AS_INDEX(index), name, value);
}

int clipc_index_save(const clipc_index *index, const char *path) { return cc_index_save(AS_INDEX(index), path); }
clipc_index *clipc_index_load(const char *path) { return (clipc_index *)cc_index_load(path); }
void clipc_index_free(clipc_index *index) { cc_index_free(AS_INDEX(index)); }
long long clipc_index_count(const clipc_index *index) { return cc_index_count(AS_INDEX(index)); }
int clipc_index_dim(const clipc_index *index) { return cc_index_dim(AS_INDEX(index)); }
int clipc_index_metric(const clipc_index *index) { return (int)cc_index_metric(AS_INDEX(index)); }
const char *clipc_index_desc(const clipc_index *index) { return cc_index_desc(AS_INDEX(index)); }
