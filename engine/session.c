/* session.c — model + tokenizer + preprocessing of one model directory (see session.h). */
#include "engine/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "engine/util.h"

#define DEFAULT_TEXT_BATCH 64
#define DEFAULT_IMAGE_BATCH 32

int cc_session_open(cc_session *s, const char *model_dir, const char *device) {
    memset(s, 0, sizeof *s);
    snprintf(s->model_dir, sizeof s->model_dir, "%s", model_dir);
    s->backend = cc_backend_by_name(device);
    if (!s->backend) return -1;
    s->model = cc_clip_load(model_dir, s->backend);
    if (!s->model) return -1;
    s->tokenizer = cc_tokenizer_load_dir(model_dir);
    if (!s->tokenizer) {
        cc_session_close(s);
        return -1;
    }
    const cc_clip_config *c = &s->model->config;
    if (cc_tokenizer_vocab_size(s->tokenizer) > c->text.vocab_size) {
        cc_set_error("%s: the tokenizer has %d tokens but the model only %d", model_dir,
                     cc_tokenizer_vocab_size(s->tokenizer), c->text.vocab_size);
        cc_session_close(s);
        return -1;
    }
    cc_preprocess_config_default(&s->preprocess, c->vision.image_size);
    char path[4200];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", model_dir);
    if (cc_file_exists(path) && cc_preprocess_config_load(path, &s->preprocess) != 0) {
        cc_session_close(s);
        return -1;
    }
    if (s->preprocess.crop_height != c->vision.image_size || s->preprocess.crop_width != c->vision.image_size) {
        cc_set_error("%s: preprocessor_config.json crops %dx%d but the model takes %dx%d images", model_dir,
                     s->preprocess.crop_width, s->preprocess.crop_height, c->vision.image_size, c->vision.image_size);
        cc_session_close(s);
        return -1;
    }
    return 0;
}

void cc_session_close(cc_session *s) {
    cc_clip_free(s->model);
    cc_tokenizer_free(s->tokenizer);
    if (s->backend && s->backend->destroy) s->backend->destroy(s->backend);
    memset(s, 0, sizeof *s);
}

static void normalize_row(float *row, int64_t dim) {
    double sum = 0;
    for (int64_t d = 0; d < dim; d++) sum += (double)row[d] * row[d];
    float inv = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (int64_t d = 0; d < dim; d++) row[d] *= inv;
}

/* Token rows to embed: one per caption, or one per window of a long caption. */
typedef struct {
    int32_t *ids;     /* [n_rows][context] */
    int32_t *eot;     /* [n_rows] */
    int64_t *owner;   /* [n_rows] caption index */
    int64_t n_rows, cap_rows;
} token_rows;

static int grow_rows(token_rows *r, int64_t need, int context) {
    if (need <= r->cap_rows) return 0;
    int64_t cap = r->cap_rows ? r->cap_rows * 2 : 256;
    while (cap < need) cap *= 2;
    int32_t *ids = cc_realloc(r->ids, (size_t)(cap * context) * sizeof(int32_t), "token rows");
    if (!ids) return -1;
    r->ids = ids;
    int32_t *eot = cc_realloc(r->eot, (size_t)cap * sizeof(int32_t), "token rows");
    if (!eot) return -1;
    r->eot = eot;
    int64_t *owner = cc_realloc(r->owner, (size_t)cap * sizeof(int64_t), "token rows");
    if (!owner) return -1;
    r->owner = owner;
    r->cap_rows = cap;
    return 0;
}

static int tokenize_all(cc_session *s, const char *const *texts, int64_t n, const cc_text_options *o, token_rows *rows,
                        int64_t *n_truncated) {
    int context = s->model->config.text.max_positions;
    for (int64_t i = 0; i < n; i++) {
        if (o->long_text == CC_LONG_TEXT_WINDOW) {
            int32_t *ids = NULL;
            int *eot = NULL;
            int stride = o->window_stride > 0 ? o->window_stride : context - 2;
            int windows = cc_tokenizer_encode_windows(s->tokenizer, texts[i], context, stride, &ids, &eot, NULL);
            if (windows < 0 || grow_rows(rows, rows->n_rows + windows, context) != 0) {
                free(ids);
                free(eot);
                return -1;
            }
            for (int w = 0; w < windows; w++, rows->n_rows++) {
                memcpy(rows->ids + rows->n_rows * context, ids + (int64_t)w * context, (size_t)context * sizeof(int32_t));
                rows->eot[rows->n_rows] = eot[w];
                rows->owner[rows->n_rows] = i;
            }
            free(ids);
            free(eot);
        } else {
            if (grow_rows(rows, rows->n_rows + 1, context) != 0) return -1;
            int eot, truncated = 0;
            if (cc_tokenizer_encode_context(s->tokenizer, texts[i], context, rows->ids + rows->n_rows * context, &eot,
                                            &truncated, NULL) < 0) {
                cc_prefix_error("caption %lld", (long long)i + 1);
                return -1;
            }
            if (truncated && n_truncated) (*n_truncated)++;
            rows->eot[rows->n_rows] = eot;
            rows->owner[rows->n_rows] = i;
            rows->n_rows++;
        }
    }
    return 0;
}

int cc_session_embed_texts(cc_session *s, const char *const *texts, int64_t n, const cc_text_options *o, float *out,
                           int64_t *n_truncated) {
    int context = s->model->config.text.max_positions;
    int64_t dim = s->model->config.projection_dim, batch = o->batch > 0 ? o->batch : DEFAULT_TEXT_BATCH;
    if (n_truncated) *n_truncated = 0;
    token_rows rows = {0};
    float *emb = NULL;
    int status = tokenize_all(s, texts, n, o, &rows, n_truncated);
    if (status == 0) {
        emb = cc_malloc((size_t)((rows.n_rows ? rows.n_rows : 1) * dim) * sizeof(float), "text embeddings");
        if (!emb) status = -1;
    }
    /* windows are normalised one by one, averaged, and renormalised if asked */
    int per_row_normalize = o->long_text == CC_LONG_TEXT_WINDOW ? 1 : o->normalize;
    for (int64_t at = 0; at < rows.n_rows && status == 0; at += batch) {
        int64_t count = rows.n_rows - at < batch ? rows.n_rows - at : batch;
        status = cc_clip_embed_texts(s->model, rows.ids + at * context, rows.eot + at, count, emb + at * dim,
                                     per_row_normalize);
        if (o->progress) cc_progress_update(o->progress, rows.owner[at + count - 1] + 1);
    }
    if (status == 0) {
        memset(out, 0, (size_t)(n * dim) * sizeof(float));
        int64_t *counts = cc_calloc((size_t)(n ? n : 1), sizeof(int64_t), "window counts");
        if (!counts) status = -1;
        for (int64_t r = 0; r < rows.n_rows && counts; r++) {
            float *dst = out + rows.owner[r] * dim;
            for (int64_t d = 0; d < dim; d++) dst[d] += emb[r * dim + d];
            counts[rows.owner[r]]++;
        }
        for (int64_t i = 0; i < n && counts; i++) {
            if (counts[i] > 1)
                for (int64_t d = 0; d < dim; d++) out[i * dim + d] /= (float)counts[i];
            if (o->long_text == CC_LONG_TEXT_WINDOW && o->normalize) normalize_row(out + i * dim, dim);
        }
        free(counts);
    }
    free(emb);
    free(rows.ids);
    free(rows.eot);
    free(rows.owner);
    return status;
}

int cc_session_embed_image_files(cc_session *s, const char *const *paths, int64_t n, const cc_image_embed_options *o,
                                 float *out, int64_t *kept, int64_t *n_kept) {
    cc_dataset ds = {0};
    int64_t dim = s->model->config.projection_dim;
    *n_kept = 0;
    int status = 0;
    for (int64_t i = 0; i < n && status == 0; i++) status = cc_dataset_add(&ds, paths[i], "");
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, o->batch > 0 ? o->batch : DEFAULT_IMAGE_BATCH);
    cfg.preprocess = s->preprocess;
    cfg.n_workers = o->n_workers;
    cfg.skip_unreadable = o->skip_bad;
    cfg.drop_last = 0;
    cfg.shuffle = 0;
    cc_loader *loader = status == 0 ? cc_loader_create(&ds, NULL, &cfg) : NULL;
    if (!loader) status = -1;
    cc_batch *batch;
    int got;
    int64_t done = 0;
    while (status == 0 && (got = cc_loader_next(loader, &batch)) != 0) {
        if (got < 0) {
            status = -1;
            break;
        }
        if (batch->n > 0)
            status = cc_clip_embed_images(s->model, batch->images, batch->n, out + *n_kept * dim, o->normalize);
        for (int i = 0; i < batch->n && kept; i++) kept[*n_kept + i] = batch->pair_index[i];
        *n_kept += batch->n;
        done += batch->n + batch->n_skipped;
        if (o->progress) cc_progress_update(o->progress, done);
    }
    cc_loader_free(loader);
    cc_dataset_free(&ds);
    return status;
}

int cc_session_embed_image(cc_session *s, const cc_image *img, int normalize, float *out) {
    const cc_clip_tower_config *v = &s->model->config.vision;
    float *pixels = cc_malloc((size_t)v->num_channels * v->image_size * v->image_size * sizeof(float), "pixels");
    if (!pixels) return -1;
    int status = cc_preprocess_image(&s->preprocess, img, pixels);
    if (status == 0) status = cc_clip_embed_images(s->model, pixels, 1, out, normalize);
    free(pixels);
    return status;
}
