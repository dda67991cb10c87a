/* clipc_api.c — the public library API (include/clipc.h) on top of cc_session. */
#include "include/clipc.h"

#include <math.h>
#include <stdlib.h>

#include "engine/session.h"
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
