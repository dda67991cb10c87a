/* serve_query.c — query embedding, multi-scale features, search with time decay, result JSON and image
 * listing shared by the search, serve, classify and model-based index commands (see serve_query.h). */
#include "tools/serve_query.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "engine/util.h"
#include "index/filter.h"
#include "tools/lines.h"

#define MIN_SCALE 16          /* smallest --multiscale size accepted */
#define MAX_SCALE 4096        /* largest (the resized tower refuses more too) */
#define MAX_WALK_DEPTH 32     /* folder nesting followed by --images DIR (guards against link loops) */
#define SECONDS_PER_DAY 86400.0

/* ------------------------------------------------------------------ model at several scales */

int app_parse_scales(const char *text, int *scales, int *n_scales) {
    *n_scales = 0;
    const char *p = text;
    while (p && *p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < MIN_SCALE || v > MAX_SCALE || (*end && *end != ',')) {
            cc_set_error("--multiscale '%s': expected comma-separated image sizes between %d and %d", text, MIN_SCALE,
                         MAX_SCALE);
            return -1;
        }
        if (*n_scales == APP_MAX_SCALES) {
            cc_set_error("--multiscale '%s': at most %d sizes", text, APP_MAX_SCALES);
            return -1;
        }
        for (int i = 0; i < *n_scales; i++)
            if (scales[i] == v) {
                cc_set_error("--multiscale '%s': size %ld given twice", text, v);
                return -1;
            }
        scales[(*n_scales)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int app_model_open(app_model *am, const char *model_dir, const char *scales) {
    memset(am, 0, sizeof *am);
    if (cc_session_open(&am->session, model_dir, NULL) != 0) return -1;
    am->dim = am->session.model->config.projection_dim;
    int native = am->session.model->config.vision.image_size;
    if (scales && *scales) {
        if (app_parse_scales(scales, am->scales, &am->n_scales) != 0) goto fail;
        for (int i = 0; i < am->n_scales; i++) {
            if (am->scales[i] == native) continue;
            am->scaled[i] = cc_clip_resized(am->session.model, am->scales[i]);
            if (!am->scaled[i]) goto fail;
        }
        if (am->n_scales == 1 && am->scales[0] == native) am->n_scales = 0;
    }
    return 0;
fail:
    cc_prefix_error("%s", model_dir);
    app_model_close(am);
    return -1;
}

void app_model_close(app_model *am) {
    for (int i = 0; i < APP_MAX_SCALES; i++) cc_clip_resized_free(am->scaled[i]);
    if (am->session.model) cc_session_close(&am->session);
    memset(am, 0, sizeof *am);
}

void app_model_scales_text(const app_model *am, char *buf, size_t size) {
    buf[0] = 0;
    for (int i = 0; i < am->n_scales; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%d", i ? "," : "", am->scales[i]);
}

/* A session record that runs scale i: the resized tower and preprocessing at that size (the resize
 * keeps the model's ratio of resize to crop). */
static void session_at_scale(const app_model *am, int i, cc_session *view) {
    *view = am->session;
    if (!am->scaled[i]) return;
    int native = am->session.model->config.vision.image_size, size = am->scales[i];
    view->model = am->scaled[i];
    view->preprocess.crop_height = view->preprocess.crop_width = size;
    view->preprocess.size = (int)lround((double)am->session.preprocess.size * size / native);
}

static void normalize(float *x, int dim) {
    double sum = 0;
    for (int i = 0; i < dim; i++) sum += (double)x[i] * x[i];
    float inv = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (int i = 0; i < dim; i++) x[i] *= inv;
}

/* ------------------------------------------------------------------ embedding */

char *app_fill_template(const char *template_text, const char *text) {
    if (!strstr(template_text, "{}")) {
        cc_set_error("template '%s' has no {} for the text", template_text);
        return NULL;
    }
    size_t n_slots = 0, tlen = strlen(text);
    for (const char *p = strstr(template_text, "{}"); p; p = strstr(p + 2, "{}")) n_slots++;
    char *out = cc_malloc(strlen(template_text) + n_slots * tlen + 1, "templated text");
    if (!out) return NULL;
    char *o = out;
    for (const char *p = template_text; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, text, tlen);
            o += tlen;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

int app_embed_texts(app_model *am, const char *const *texts, int64_t n, const char *template_text,
                    cc_progress *progress, float *out, int64_t *n_truncated) {
    char **filled = NULL;
    if (template_text) {
        filled = cc_calloc((size_t)(n ? n : 1), sizeof *filled, "templated texts");
        if (!filled) return -1;
        for (int64_t i = 0; i < n; i++)
            if (!(filled[i] = app_fill_template(template_text, texts[i]))) {
                app_free_strings(filled, n);
                return -1;
            }
    }
    int context = am->session.model->config.text.max_positions;
    int stride = am->window_stride > 0 ? am->window_stride : context - 2; /* 0: windows side by side */
    cc_text_options o = {.long_text = am->long_text, .window_stride = stride, .normalize = 1, .progress = progress};
    int rc = cc_session_embed_texts(&am->session, filled ? (const char *const *)filled : texts, n, &o, out, n_truncated);
    if (filled) app_free_strings(filled, n);
    return rc;
}

int app_embed_image(app_model *am, const cc_image *img, float *out) {
    if (am->n_scales == 0) return cc_session_embed_image(&am->session, img, 1, out);
    float *one = cc_malloc((size_t)am->dim * sizeof(float), "image features");
    if (!one) return -1;
    memset(out, 0, (size_t)am->dim * sizeof(float));
    int rc = 0;
    for (int s = 0; s < am->n_scales && rc == 0; s++) {
        cc_session view;
        session_at_scale(am, s, &view);
        if ((rc = cc_session_embed_image(&view, img, 1, one)) == 0)
            for (int d = 0; d < am->dim; d++) out[d] += one[d];
    }
    normalize(out, am->dim);
    free(one);
    return rc;
}

int app_embed_image_files(app_model *am, const char *const *paths, int64_t n, cc_progress *progress, float *out,
                          int64_t *kept, int64_t *n_kept) {
    cc_image_embed_options o = {.normalize = 1, .skip_bad = 1, .progress = progress};
    if (am->n_scales == 0) return cc_session_embed_image_files(&am->session, paths, n, &o, out, kept, n_kept);
    int64_t dim = am->dim;
    float *one = cc_malloc((size_t)((n ? n : 1) * dim) * sizeof(float), "image features");
    int64_t *kept_one = cc_malloc((size_t)(n ? n : 1) * sizeof(int64_t), "kept rows");
    int rc = one && kept_one ? 0 : -1;
    static char labels[APP_MAX_SCALES][32];
    for (int s = 0; s < am->n_scales && rc == 0; s++) {
        cc_session view;
        session_at_scale(am, s, &view);
        if (progress) {
            snprintf(labels[s], sizeof labels[s], "embed@%d", am->scales[s]);
            cc_progress_start(progress, labels[s], n, "img");
        }
        int64_t count = 0;
        if ((rc = cc_session_embed_image_files(&view, paths, n, &o, one, kept_one, &count)) != 0) break;
        if (s == 0) {
            *n_kept = count;
            memcpy(kept, kept_one, (size_t)count * sizeof(int64_t));
            memset(out, 0, (size_t)(count * dim) * sizeof(float));
        } else if (count != *n_kept || memcmp(kept, kept_one, (size_t)count * sizeof(int64_t)) != 0) {
            cc_set_error("the images readable at size %d differ from those at size %d", am->scales[s], am->scales[0]);
            rc = -1;
            break;
        }
        for (int64_t i = 0; i < count * dim; i++) out[i] += one[i];
    }
    if (rc == 0)
        for (int64_t i = 0; i < *n_kept; i++) normalize(out + i * dim, (int)dim);
    free(one);
    free(kept_one);
    return rc;
}

/* ------------------------------------------------------------------ index metadata */

int app_index_style(const cc_index *idx, const char *override, cc_preprocess_style *style) {
    const char *stored = idx ? cc_index_get_meta(idx, APP_META_STYLE) : NULL;
    *style = CC_PREPROCESS_OPENAI;
    if (override) return cc_preprocess_style_parse(override, style);
    if (stored && cc_preprocess_style_parse(stored, style) != 0) {
        cc_prefix_error("the index's %s", APP_META_STYLE);
        return -1;
    }
    return 0;
}

const char *app_index_model_dir(const cc_index *idx, const char *override) {
    if (override) return override;
    const char *dir = cc_index_get_meta(idx, APP_META_MODEL);
    if (!dir || !*dir) {
        cc_set_error("the index does not record the model that built it: give --model DIR");
        return NULL;
    }
    return dir;
}

int app_check_dims(const app_model *am, const cc_index *idx, const char *index_path) {
    if (am->dim == cc_index_dim(idx)) return 0;
    cc_set_error("the model %s gives %d-d embeddings but the index %s holds %d-d vectors (was it built with another "
                 "model?)",
                 am->session.model_dir, am->dim, index_path, cc_index_dim(idx));
    return -1;
}

const char *app_item_key(const cc_index *idx) {
    const char *kind = cc_index_get_meta(idx, APP_META_KIND);
    if (kind && !strcmp(kind, "images")) return "path";
    if (kind && !strcmp(kind, "texts")) return "caption";
    return "text";
}

/* ------------------------------------------------------------------ search */

typedef struct {
    int64_t id;
    float score;
    int order; /* rank before re-ranking: ties keep it */
} scored_item;

static int by_score_desc(const void *a, const void *b) {
    const scored_item *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->order - y->order;
}

int app_search(const cc_index *idx, const float *query, const app_search_options *o, int64_t *ids, float *scores) {
    int64_t count = cc_index_count(idx);
    if (count == 0) {
        cc_set_error("the index is empty");
        return -1;
    }
    if (o->k < 1) {
        cc_set_error("k must be at least 1, got %d", o->k);
        return -1;
    }
    if (o->decay > 0 && cc_index_metric(idx) != CC_METRIC_IP) {
        cc_set_error("time decay needs an inner-product index (this one is %s)", cc_metric_name(cc_index_metric(idx)));
        return -1;
    }
    int k = o->k < count ? o->k : (int)count;
    int n_cand = k;
    if (o->decay > 0) n_cand = 3 * (int64_t)k < count ? 3 * k : (int)count;
    int64_t *cand_ids = cc_malloc((size_t)n_cand * sizeof(int64_t), "search candidates");
    float *cand_scores = cc_malloc((size_t)n_cand * sizeof(float), "search candidates");
    scored_item *items = cc_malloc((size_t)n_cand * sizeof(scored_item), "search candidates");
    int n = -1;
    if (!cand_ids || !cand_scores || !items) goto done;
    if (cc_index_search_ex(idx, 1, query, n_cand, &o->params, cand_ids, cand_scores) != 0) goto done;
    int valid = 0;
    for (int i = 0; i < n_cand; i++) {
        if (cand_ids[i] < 0) continue;
        float s = cand_scores[i];
        int64_t ts;
        if (o->decay > 0 && cc_index_item_timestamp(idx, cand_ids[i], &ts) == 1) {
            double age_days = ((double)o->now - (double)ts) / SECONDS_PER_DAY; /* in double: no overflow */
            if (age_days < 0) age_days = 0; /* items from the future count as new */
            s = (float)(s * exp(-o->decay * age_days));
        }
        items[valid++] = (scored_item){cand_ids[i], s, i};
    }
    if (o->decay > 0) qsort(items, (size_t)valid, sizeof *items, by_score_desc);
    n = valid < k ? valid : k;
    for (int i = 0; i < n; i++) {
        ids[i] = items[i].id;
        scores[i] = items[i].score;
    }
done:
    free(cand_ids);
    free(cand_scores);
    free(items);
    return n;
}

cJSON *app_results_json(const cc_index *idx, const int64_t *ids, const float *scores, int n) {
    return app_results_json_shards(&idx, 1, ids, scores, n);
}

cJSON *app_results_json_shards(const cc_index *const *shards, int n_shards, const int64_t *ids, const float *scores,
                               int n) {
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "results");
    const char *key = app_item_key(shards[0]);
    for (int i = 0; i < n && list; i++) {
        const cc_index *idx = shards[ids[i] >= 0 ? ids[i] % n_shards : 0];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "rank", i + 1);
        cJSON_AddNumberToObject(r, "score", round((double)scores[i] * 1e6) / 1e6);
        cJSON_AddNumberToObject(r, "id", (double)ids[i]);
        const char *text = cc_index_item_text(idx, ids[i]);
        if (text) cJSON_AddStringToObject(r, key, text);
        int64_t ts;
        if (cc_index_item_timestamp(idx, ids[i], &ts) == 1) cJSON_AddNumberToObject(r, "timestamp", (double)ts);
        const char *tags = cc_index_item_tags(idx, ids[i]);
        if (tags) { /* "cat,dog" -> ["cat", "dog"] */
            cJSON *arr = cJSON_AddArrayToObject(r, "tags");
            for (const char *p = tags; arr && p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                char one[CC_TAG_MAX_BYTES + 1];
                memcpy(one, p, len < sizeof one ? len : sizeof one - 1);
                one[len < sizeof one ? len : sizeof one - 1] = 0;
                cJSON_AddItemToArray(arr, cJSON_CreateString(one));
                p = comma ? comma + 1 : NULL;
            }
        }
        cJSON_AddItemToArray(list, r);
    }
    return root;
}

/* ------------------------------------------------------------------ image lists */

typedef struct {
    char **items;
    int64_t n, cap;
} string_vec;

static int vec_push(string_vec *v, const char *s) {
    if (v->n == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 256;
        char **grown = cc_realloc(v->items, (size_t)cap * sizeof *grown, "image list");
        if (!grown) return -1;
        v->items = grown;
        v->cap = cap;
    }
    if (!(v->items[v->n] = cc_strdup(s))) return -1;
    v->n++;
    return 0;
}

/* The names a folder scan picks up: every format data/image decodes (the decoder itself goes by the
 * file's signature, so a misnamed file is still read right). */
static int has_image_extension(const char *name) {
    static const char *const extensions[] = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff", NULL};
    const char *dot = strrchr(name, '.');
    for (int i = 0; dot && extensions[i]; i++)
        if (!strcasecmp(dot, extensions[i])) return 1;
    return 0;
}

int app_is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int walk(const char *dir, int depth, string_vec *out) {
    DIR *d = opendir(dir);
    if (!d) {
        if (depth == 0) {
            cc_set_error("%s: cannot open the folder", dir);
            return -1;
        }
        fprintf(stderr, "warning: %s: cannot open the folder, skipped\n", dir);
        return 0;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden entries */
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = cc_malloc(len, "path");
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                if (depth + 1 >= MAX_WALK_DEPTH) fprintf(stderr, "warning: %s: nested too deep, skipped\n", path);
                else rc = walk(path, depth + 1, out);
            } else if (S_ISREG(st.st_mode) && has_image_extension(e->d_name)) {
                rc = vec_push(out, path);
            }
        }
        free(path);
    }
    closedir(d);
    return rc;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int app_list_images(const char *dir_or_list, char ***out, int64_t *n_out) {
    string_vec v = {0};
    int rc = 0;
    if (app_is_directory(dir_or_list)) {
        rc = walk(dir_or_list, 0, &v);
        if (rc == 0 && v.n) qsort(v.items, (size_t)v.n, sizeof *v.items, compare_strings); /* an empty folder: v.items is NULL */
    } else {
        cc_lines lines;
        if (cc_lines_read(dir_or_list, 1, &lines) != 0) return -1;
        for (int64_t i = 0; i < lines.count && rc == 0; i++) rc = vec_push(&v, lines.lines[i]);
        cc_lines_free(&lines);
    }
    if (rc != 0) {
        app_free_strings(v.items, v.n);
        return -1;
    }
    *out = v.items;
    *n_out = v.n;
    return 0;
}

void app_free_strings(char **items, int64_t n) {
    for (int64_t i = 0; i < n && items; i++) free(items[i]);
    free(items);
}
