/* zeroshot.c — template-ensemble class features and zero-shot top-1/top-5 (see zeroshot.h). */
#include "train/zeroshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/gemm.h"

const char *const cc_zeroshot_default_templates[] = {
    "a photo of a {}.",
    "a picture of a {}.",
    "an image showing a {}.",
    "a snapshot of a {}.",
    "a close-up photo of a {}.",
    "a photo of a {} seen from far away.",
    "a blurry photo of a {}.",
    "a grainy photo of a {}.",
    "a low-resolution photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a black and white photo of a {}.",
    "a cropped photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {} outdoors.",
    "a drawing of a {}.",
    "a painting of a {}.",
    "a cartoon of a {}.",
    "a 3d render of a {}.",
    "an origami {}.",
    "a toy {}.",
};
const int64_t cc_zeroshot_n_default_templates =
    (int64_t)(sizeof cc_zeroshot_default_templates / sizeof cc_zeroshot_default_templates[0]);

void cc_zeroshot_free_strings(char **strings, int64_t n) {
    for (int64_t i = 0; strings && i < n; i++) free(strings[i]);
    free(strings);
}

char *cc_zeroshot_fill_template(const char *template_text, const char *text) {
    if (!strstr(template_text, "{}")) {
        cc_set_error("template '%s' has no {} for the text", template_text);
        return NULL;
    }
    size_t n_slots = 0, text_len = strlen(text);
    for (const char *p = strstr(template_text, "{}"); p; p = strstr(p + 2, "{}")) n_slots++;
    char *out = cc_malloc(strlen(template_text) + n_slots * text_len + 1, "templated text");
    if (!out) return NULL;
    char *o = out;
    for (const char *p = template_text; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, text, text_len);
            o += text_len;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

/* Calls line(ctx, text, len, number) for each line of a file without its "\r\n"; stops at the first
 * non-zero return. */
static int for_each_line(const char *path, int (*line)(void *, char *, size_t, int64_t), void *ctx) {
    char *text;
    size_t size;
    if (cc_read_file(path, &text, &size) != 0) return -1;
    int status = 0;
    int64_t number = 0;
    for (size_t at = 0; at < size && status == 0;) {
        size_t end = at;
        while (end < size && text[end] != '\n') end++;
        size_t len = end - at;
        if (len > 0 && text[at + len - 1] == '\r') len--;
        text[at + len] = 0;
        status = line(ctx, text + at, len, ++number);
        at = end + 1;
    }
    free(text);
    return status;
}

typedef struct {
    const char *path;
    char **items;
    int64_t n, cap;
} template_list;

static int add_template(void *ctx, char *text, size_t len, int64_t number) {
    template_list *t = ctx;
    if (len == 0 || text[0] == '#') return 0;
    if (!strstr(text, "{}")) {
        cc_set_error("%s:%lld: template '%s' has no {} for the class name", t->path, (long long)number, text);
        return -1;
    }
    if (t->n >= CC_ZEROSHOT_MAX_TEMPLATES) {
        cc_set_error("%s: more than %d templates", t->path, CC_ZEROSHOT_MAX_TEMPLATES);
        return -1;
    }
    if (t->n == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 32;
        char **grown = cc_realloc(t->items, (size_t)cap * sizeof *grown, "templates");
        if (!grown) return -1;
        t->items = grown;
        t->cap = cap;
    }
    return (t->items[t->n] = cc_strdup(text)) ? (t->n++, 0) : -1;
}

int cc_zeroshot_read_templates(const char *path, char ***templates, int64_t *n) {
    template_list t = {.path = path};
    int status = for_each_line(path, add_template, &t);
    if (status == 0 && t.n == 0) {
        cc_set_error("%s: no templates (one per line, with {} for the class name)", path);
        status = -1;
    }
    if (status != 0) {
        cc_zeroshot_free_strings(t.items, t.n);
        return -1;
    }
    *templates = t.items;
    *n = t.n;
    return 0;
}

int cc_zeroshot_class_features(cc_embed_texts_fn embed, void *ctx, int64_t dim, const char *const *classes,
                               int64_t n_classes, const char *const *templates, int64_t n_templates, float *out) {
    int64_t n = n_classes * n_templates;
    char **prompts = cc_calloc((size_t)(n ? n : 1), sizeof *prompts, "class prompts");
    float *feats = cc_malloc((size_t)((n ? n : 1) * dim) * sizeof(float), "class prompt features");
    int status = prompts && feats ? 0 : -1;
    for (int64_t c = 0; c < n_classes && status == 0; c++)
        for (int64_t t = 0; t < n_templates && status == 0; t++)
            if (!(prompts[c * n_templates + t] = cc_zeroshot_fill_template(templates[t], classes[c]))) status = -1;
    if (status == 0) status = embed(ctx, (const char *const *)prompts, n, feats);
    for (int64_t c = 0; c < n_classes && status == 0; c++) {
        float *dst = out + c * dim;
        memset(dst, 0, (size_t)dim * sizeof(float));
        for (int64_t t = 0; t < n_templates; t++)
            for (int64_t d = 0; d < dim; d++) dst[d] += feats[(c * n_templates + t) * dim + d];
        double norm = 0;
        for (int64_t d = 0; d < dim; d++) norm += (double)dst[d] * dst[d];
        float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
        for (int64_t d = 0; d < dim; d++) dst[d] *= inv;
    }
    cc_zeroshot_free_strings(prompts, prompts ? n : 0);
    free(feats);
    return status;
}

/* ---- the data file ---- */

typedef struct {
    const char *path;
    cc_zeroshot_set *z;
    cc_dataset labels; /* distinct labels as the "images" of a dataset: image_index = class */
    int64_t cap;
} zeroshot_reader;

static int add_example(void *ctx, char *text, size_t len, int64_t number) {
    zeroshot_reader *r = ctx;
    if (len == 0 || text[0] == '#') return 0;
    char *tab = strchr(text, '\t');
    if (!tab || tab == text || !tab[1] || strchr(tab + 1, '\t')) {
        cc_set_error("%s:%lld: expected \"image path<TAB>label\"", r->path, (long long)number);
        return -1;
    }
    *tab = 0;
    cc_zeroshot_set *z = r->z;
    if (z->images.n_pairs == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 1024;
        int64_t *grown = cc_realloc(z->label, (size_t)cap * sizeof *grown, "zero-shot labels");
        if (!grown) return -1;
        z->label = grown;
        r->cap = cap;
    }
    if (cc_dataset_add(&r->labels, tab + 1, "") != 0 || cc_dataset_add(&z->images, text, tab + 1) != 0) return -1;
    z->label[z->images.n_pairs - 1] = r->labels.pairs[r->labels.n_pairs - 1].image_index;
    return 0;
}

int cc_zeroshot_read(const char *path, const char *image_root, cc_zeroshot_set *out) {
    memset(out, 0, sizeof *out);
    char root[4096];
    if (image_root) {
        snprintf(root, sizeof root, "%s", image_root);
    } else {
        const char *slash = strrchr(path, '/');
        snprintf(root, sizeof root, "%.*s", slash ? (int)(slash - path) : 0, path);
    }
    zeroshot_reader r = {.path = path, .z = out};
    int status = cc_dataset_init_empty(&out->images, root) == 0 && cc_dataset_init_empty(&r.labels, NULL) == 0 ? 0 : -1;
    if (status == 0) status = for_each_line(path, add_example, &r);
    if (status == 0 && (out->images.n_pairs == 0 || r.labels.n_images < 2)) {
        cc_set_error("%s: need lines \"image path<TAB>label\" with at least two distinct labels", path);
        status = -1;
    }
    if (status == 0) {
        out->n_classes = r.labels.n_images;
        out->classes = cc_calloc((size_t)out->n_classes, sizeof *out->classes, "zero-shot classes");
        if (!out->classes) status = -1;
        for (int64_t p = 0; p < r.labels.n_pairs && status == 0; p++) {
            int64_t c = r.labels.pairs[p].image_index;
            if (!out->classes[c] && !(out->classes[c] = cc_strdup(r.labels.pairs[p].image))) status = -1;
        }
    }
    cc_dataset_free(&r.labels);
    if (status != 0) cc_zeroshot_free(out);
    return status;
}

void cc_zeroshot_free(cc_zeroshot_set *z) {
    cc_dataset_free(&z->images);
    cc_zeroshot_free_strings(z->classes, z->n_classes);
    free(z->label);
    memset(z, 0, sizeof *z);
}

/* ---- evaluation ---- */

typedef struct {
    const cc_embedder *e;
    cc_tokenizer *tok;
    int batch;
} embedder_texts;

/* texts → token ids (truncated to the context, end token kept) → the embedder's text tower */
static int embed_with_embedder(void *ctx, const char *const *texts, int64_t n, float *out) {
    embedder_texts *et = ctx;
    const cc_embedder *e = et->e;
    int32_t *ids = cc_malloc((size_t)et->batch * (size_t)e->context * sizeof(int32_t), "prompt tokens");
    int32_t *eot = cc_malloc((size_t)et->batch * sizeof(int32_t), "prompt tokens");
    int status = ids && eot ? 0 : -1;
    for (int64_t start = 0; start < n && status == 0; start += et->batch) {
        int count = n - start < et->batch ? (int)(n - start) : et->batch;
        for (int i = 0; i < count && status == 0; i++) {
            int eot_pos;
            if (cc_tokenizer_encode_context(et->tok, texts[start + i], e->context, ids + (int64_t)i * e->context, &eot_pos,
                                            NULL, NULL) < 0)
                status = -1;
            eot[i] = eot_pos;
        }
        if (status == 0) status = e->texts(e->ctx, ids, eot, count, out + start * e->dim);
    }
    free(ids);
    free(eot);
    return status;
}

int cc_zeroshot_evaluate(const cc_zeroshot_set *z, cc_tokenizer *tok, const cc_embedder *e,
                         const cc_evaluate_options *o, const char *const *templates, int64_t n_templates,
                         cc_zeroshot_result *out) {
    memset(out, 0, sizeof *out);
    if (!templates) {
        templates = cc_zeroshot_default_templates;
        n_templates = cc_zeroshot_n_default_templates;
    }
    int64_t dim = e->dim, n_classes = z->n_classes;
    int batch = o->batch > 0 ? o->batch : 32;
    float *classes = cc_malloc((size_t)(n_classes * dim) * sizeof(float), "class features");
    float *images = cc_malloc((size_t)batch * (size_t)dim * sizeof(float), "image features");
    float *scores = cc_malloc((size_t)batch * (size_t)n_classes * sizeof(float), "class scores");
    int status = classes && images && scores ? 0 : -1;
    embedder_texts et = {e, tok, batch};
    if (status == 0)
        status = cc_zeroshot_class_features(embed_with_embedder, &et, dim, (const char *const *)z->classes, n_classes,
                                            templates, n_templates, classes);
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, batch);
    cfg.preprocess = o->preprocess;
    cfg.n_workers = o->n_workers;
    cfg.skip_unreadable = 1;
    cc_loader *loader = status == 0 ? cc_loader_create(&z->images, NULL, &cfg) : NULL;
    if (status == 0 && !loader) status = -1;
    cc_progress progress;
    cc_progress_start(&progress, o->label ? o->label : "zero-shot", z->images.n_pairs, "img");
    int64_t hits1 = 0, hits5 = 0, scored = 0, done = 0;
    cc_batch *b;
    int got;
    while (status == 0 && (got = cc_loader_next(loader, &b)) != 0) {
        if (got < 0 || (b->n > 0 && e->images(e->ctx, b->images, b->n, images) != 0)) {
            status = -1;
            break;
        }
        if (b->n > 0)
            cc_sgemm(0, 1, b->n, n_classes, dim, 1.0f, images, dim, classes, dim, 0.0f, scores, n_classes);
        for (int i = 0; i < b->n; i++) {
            const float *row = scores + (int64_t)i * n_classes;
            int64_t truth = z->label[b->pair_index[i]], above = 0;
            for (int64_t c = 0; c < n_classes; c++) above += row[c] > row[truth];
            hits1 += above < 1;
            hits5 += above < 5;
        }
        scored += b->n;
        done += b->n + b->n_skipped;
        cc_progress_update(&progress, done);
    }
    cc_progress_finish(&progress);
    out->n_skipped = loader ? cc_loader_total_skipped(loader) : 0;
    cc_loader_free(loader);
    if (status == 0 && scored == 0) {
        cc_set_error("zero-shot: no readable image");
        status = -1;
    }
    out->n_images = scored;
    out->n_classes = n_classes;
    out->top1 = scored ? (double)hits1 / (double)scored : 0;
    out->top5 = scored ? (double)hits5 / (double)scored : 0;
    free(classes);
    free(images);
    free(scores);
    return status;
}

char *cc_zeroshot_json(const cc_zeroshot_result *r, int64_t n_templates) {
    char *text = cc_malloc(256, "zero-shot json");
    if (!text) return NULL;
    snprintf(text, 256, "{\"top1\": %.4f, \"top5\": %.4f, \"n_images\": %lld, \"n_classes\": %lld, \"templates\": %lld}",
             r->top1, r->top5, (long long)r->n_images, (long long)r->n_classes, (long long)n_templates);
    return text;
}
