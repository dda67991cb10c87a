/* cmd_index.c — the "clipc index ..." commands: build, add, remove, search, tune, info.
 * Vectors, ids, queries and results are .npy files; the index file format is in docs/FORMATS.md.
 * build and add also take a model and a folder of images or a caption file, embed them (with an
 * embedding cache next to the index) and record the model in the index (docs/SEARCH.md). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <utf8proc.h>

#include "data/npy.h"
#include "engine/clip.h"
#include "engine/util.h"
#include "index/filter.h"
#include "index/index.h"
#include "index/manifest.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/lines.h"
#include "tools/serve_query.h"

#define MAX_K 100000 /* largest k accepted on the command line */

/* ------------------------------------------------------------------ helpers */

/* Loads a 2-D float32 matrix; dim_expected 0 = any. */
static int load_matrix(const char *path, const char *what, int dim_expected, cc_npy *out) {
    if (cc_npy_read_f32(path, out) != 0) return -1;
    if (out->ndim != 2 || out->shape[0] < 0) {
        cc_set_error("%s: %s must be a 2-D array (rows x dimension), got %d dimension(s)", path, what, out->ndim);
        cc_npy_free(out);
        return -1;
    }
    if (out->shape[1] < 1) {
        cc_set_error("%s: %s have dimension 0 (the array is %lld x 0)", path, what, (long long)out->shape[0]);
        cc_npy_free(out);
        return -1;
    }
    if (dim_expected && out->shape[1] != dim_expected) {
        cc_set_error("%s: %s have dimension %lld, the index has %d", path, what, (long long)out->shape[1], dim_expected);
        cc_npy_free(out);
        return -1;
    }
    if (out->shape[1] > 65536) {
        cc_set_error("%s: dimension %lld is too large", path, (long long)out->shape[1]);
        cc_npy_free(out);
        return -1;
    }
    if (cc_check_finite(out->data, out->shape[0], (int)out->shape[1], what) != 0) {
        cc_prefix_error("%s", path);
        cc_npy_free(out);
        return -1;
    }
    return 0;
}

static int load_ids(const char *path, int64_t n_expected, cc_npy *out) {
    if (cc_npy_read_i64(path, out) != 0) return -1;
    if (out->ndim != 1 || out->shape[0] != n_expected) {
        cc_set_error("%s: ids must be a 1-D array of %lld entries (one per vector), got %lld", path,
                     (long long)n_expected, (long long)(out->ndim == 1 ? out->shape[0] : out->count));
        cc_npy_free(out);
        return -1;
    }
    return 0;
}

/* One text per line (UTF-8); returns n_expected pointers into *buf. Empty lines are empty texts. */
static const char **load_texts(const char *path, int64_t n_expected, char **buf) {
    size_t size;
    if (cc_read_file(path, buf, &size) != 0) return NULL;
    const char **texts = cc_malloc((size_t)(n_expected ? n_expected : 1) * sizeof(char *), "texts");
    if (!texts) return NULL;
    int64_t n = 0;
    char *p = *buf, *end = *buf + size;
    while (p < end && n < n_expected) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r') stop[-1] = 0;
        *stop = 0;
        texts[n++] = p;
        p = nl ? nl + 1 : end;
    }
    if (n != n_expected || (p < end && strspn(p, "\r\n") != (size_t)(end - p))) {
        cc_set_error("%s: expected %lld lines (one text per vector), found %s%lld", path, (long long)n_expected,
                     n == n_expected ? "more than " : "", (long long)n);
        free(texts);
        return NULL;
    }
    return texts;
}

static int parse_metric(const char *text, cc_metric *out) {
    if (!text || !strcmp(text, "ip")) *out = CC_METRIC_IP;
    else if (!strcmp(text, "l2")) *out = CC_METRIC_L2;
    else {
        cc_set_error("--metric must be ip or l2, got '%s'", text);
        return -1;
    }
    return 0;
}

static void print_summary_line(const cc_index *idx, const char *path) {
    int64_t n = cc_index_count(idx);
    printf("%s: %s, %d-d, %s, %lld vectors, %.1f bytes/vector\n", path, cc_index_desc(idx), cc_index_dim(idx),
           cc_metric_name(cc_index_metric(idx)), (long long)n,
           n ? (double)cc_index_memory_bytes(idx) / (double)n : 0.0);
}

/* ------------------------------------------------------------------ model-based build and add
 *
 * `index build --model DIR (--images DIR|LIST | --texts FILE)` embeds the items itself; `index add`
 * appends to such an index with the model, scales and long-text mode recorded in its metadata.
 *
 * Embedding cache: INDEX.cache (or --cache FILE) is a Flat index file whose item texts are the cache
 * keys — "SIZE MTIME_NS PATH" for an image file, the caption itself for a caption — and whose metadata
 * records the model (path, and size/mtime of config.json and the weights), the kind, the scales and
 * the long-text mode. Items whose key is in a cache made with the same model and options are not
 * embedded again; a cache made otherwise is ignored (and replaced). */

#define CACHE_SUFFIX ".cache"
#define MAX_SKIP_WARNINGS 20        /* unreadable images named one by one; the rest are counted */
#define NO_TIMESTAMP INT64_MIN      /* add_items' "no timestamp" value (index/internal.h) */
#define MAX_ITEM_ID_SCAN (1 << 26)  /* ids looked at when listing an index's items (model-built: 0..n-1) */

typedef struct model_args {
    const char *model, *images, *texts, *meta, *scales, *long_text, *cache, *style;
    int64_t window_stride;
    int no_cache;
} model_args;

/* The items of one run, in input order. */
typedef struct item_set {
    int64_t n;
    char **texts;         /* stored per item: the absolute image path, or the caption */
    char **keys;          /* cache keys */
    int64_t *timestamps;  /* NO_TIMESTAMP where none */
    int has_timestamps;
    char **tags;          /* normalised tag lists from --meta ("cat,dog"), NULL where none */
    int has_tags;
    int64_t n_missing;    /* image paths that do not exist (skipped) */
    int64_t n_duplicates; /* the same image listed twice (kept once) */
    int64_t n_bad_text;   /* captions / paths that are not valid UTF-8 (skipped) */
} item_set;

static void item_set_free(item_set *s) {
    app_free_strings(s->texts, s->n);
    app_free_strings(s->keys, s->n);
    if (s->tags) app_free_strings(s->tags, s->n);
    free(s->timestamps);
    memset(s, 0, sizeof *s);
}

static int valid_utf8(const char *s) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(s);
    while (len > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(p, len, &cp);
        if (step <= 0) return 0;
        p += step;
        len -= step;
    }
    return 1;
}

static int item_set_push(item_set *s, int64_t *cap, char *text, char *key) {
    if (s->n == *cap) {
        int64_t grown = *cap ? *cap * 2 : 256;
        char **t = cc_realloc(s->texts, (size_t)grown * sizeof *t, "items");
        if (t) s->texts = t;
        char **k = t ? cc_realloc(s->keys, (size_t)grown * sizeof *k, "items") : NULL;
        if (k) s->keys = k;
        int64_t *ts = k ? cc_realloc(s->timestamps, (size_t)grown * sizeof *ts, "items") : NULL;
        if (ts) s->timestamps = ts;
        char **tg = ts ? cc_realloc(s->tags, (size_t)grown * sizeof *tg, "items") : NULL;
        if (!tg) {
            free(text);
            free(key);
            return -1;
        }
        s->tags = tg;
        *cap = grown;
    }
    s->texts[s->n] = text;
    s->keys[s->n] = key;
    s->timestamps[s->n] = NO_TIMESTAMP;
    s->tags[s->n] = NULL;
    s->n++;
    return 0;
}

static char *image_cache_key(const char *abs_path, const struct stat *st) {
    int64_t mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    size_t len = strlen(abs_path) + 48;
    char *key = cc_malloc(len, "cache key");
    if (key) snprintf(key, len, "%lld %lld %s", (long long)st->st_size, (long long)mtime_ns, abs_path);
    return key;
}

/* The path part of an image cache key (after the size and mtime), or NULL. */
static const char *cache_key_path(const char *key) {
    const char *sp = strchr(key, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    return sp ? sp + 1 : NULL;
}

/* Sorted (text, position) pairs; ties keep the input order. */
typedef struct {
    const char *key;
    int64_t index;
} keyed_index;

static int compare_keyed(const void *a, const void *b) {
    const keyed_index *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int64_t find_keyed(const keyed_index *sorted, int64_t n, const char *key) {
    int64_t lo = 0, hi = n; /* first entry with this key */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid].key, key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && !strcmp(sorted[lo].key, key) ? sorted[lo].index : -1;
}

/* Images: absolute canonical paths (realpath), missing files and duplicates dropped with a count. */
static int collect_images(const char *source, item_set *set) {
    char **paths = NULL;
    int64_t n_paths = 0, cap = 0;
    if (app_list_images(source, &paths, &n_paths) != 0) return -1;
    int rc = 0;
    for (int64_t i = 0; i < n_paths && rc == 0; i++) {
        char *abs = realpath(paths[i], NULL);
        struct stat st;
        if (!abs || stat(abs, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (set->n_missing++ < MAX_SKIP_WARNINGS) fprintf(stderr, "warning: %s: no such image file, skipped\n", paths[i]);
            free(abs);
            continue;
        }
        if (!valid_utf8(abs) || strchr(abs, '\n')) {
            if (set->n_bad_text++ < MAX_SKIP_WARNINGS)
                fprintf(stderr, "warning: %s: the path is not valid UTF-8 text, skipped\n", paths[i]);
            free(abs);
            continue;
        }
        char *key = image_cache_key(abs, &st);
        rc = key ? item_set_push(set, &cap, abs, key) : -1;
        if (!key) free(abs);
    }
    app_free_strings(paths, n_paths);
    if (rc != 0 || set->n < 2) return rc;
    /* duplicates (the same file reached twice): keep the first */
    keyed_index *sorted = cc_malloc((size_t)set->n * sizeof *sorted, "duplicate check");
    uint8_t *dup = cc_calloc((size_t)set->n, 1, "duplicate check");
    if (!sorted || !dup) {
        free(sorted);
        free(dup);
        return -1;
    }
    for (int64_t i = 0; i < set->n; i++) sorted[i] = (keyed_index){set->texts[i], i};
    qsort(sorted, (size_t)set->n, sizeof *sorted, compare_keyed);
    for (int64_t i = 1; i < set->n; i++)
        if (!strcmp(sorted[i].key, sorted[i - 1].key)) dup[sorted[i].index] = 1;
    free(sorted);
    int64_t kept = 0;
    for (int64_t i = 0; i < set->n; i++) {
        if (dup[i]) {
            free(set->texts[i]);
            free(set->keys[i]);
            set->n_duplicates++;
            continue;
        }
        set->texts[kept] = set->texts[i];
        set->keys[kept] = set->keys[i];
        kept++;
    }
    free(dup);
    set->n = kept;
    return 0;
}

static int collect_texts(const char *path, item_set *set) {
    cc_lines lines;
    if (cc_lines_read(path, 1, &lines) != 0) return -1;
    int64_t cap = 0;
    int rc = 0;
    for (int64_t i = 0; i < lines.count && rc == 0; i++) {
        if (!valid_utf8(lines.lines[i])) {
            if (set->n_bad_text++ < MAX_SKIP_WARNINGS)
                fprintf(stderr, "warning: %s:%lld: not valid UTF-8, skipped\n", path, (long long)i + 1);
            continue;
        }
        char *text = cc_strdup(lines.lines[i]), *key = cc_strdup(lines.lines[i]);
        rc = text && key ? item_set_push(set, &cap, text, key) : -1;
    }
    cc_lines_free(&lines);
    return rc;
}

/* ---- --meta FILE.tsv: "KEY<TAB>TIME" or "KEY<TAB>TIME<TAB>TAGS" per line; KEY an image path or a
 * caption; TIME unix seconds or an ISO 8601 UTC date ("2024-05-01", "2024-05-01T12:30:00Z"), empty
 * in the three-column form for no time; TAGS a comma-separated tag list ("cat, outdoor"). A first line
 * whose TIME does not parse is a header; lines starting with # are comments. */

static int apply_meta(const char *path, int images, item_set *set) {
    cc_lines lines;
    if (cc_lines_read(path, 1, &lines) != 0) return -1;
    keyed_index *by_text = cc_malloc((size_t)(set->n ? set->n : 1) * sizeof *by_text, "metadata lookup");
    int rc = by_text ? 0 : -1;
    for (int64_t i = 0; i < set->n && by_text; i++) by_text[i] = (keyed_index){set->texts[i], i};
    if (by_text) qsort(by_text, (size_t)set->n, sizeof *by_text, compare_keyed);
    int64_t matched = 0, unmatched = 0;
    for (int64_t i = 0; i < lines.count && rc == 0; i++) {
        char *line = lines.lines[i];
        if (line[0] == '#') continue;
        char *tab = strchr(line, '\t'), *tab2 = tab ? strchr(tab + 1, '\t') : NULL;
        int64_t t = NO_TIMESTAMP;
        const char *time_text = tab ? tab + 1 : NULL, *tags_text = tab2 ? tab2 + 1 : NULL;
        if (tab2) *tab2 = 0;
        int bad_time = !tab || (tab2 && strchr(tags_text, '\t')) || (!(tab2 && !*time_text) && cc_parse_time(time_text, &t) != 0);
        if (bad_time) {
            if (i == 0) continue; /* header */
            if (tab2) *tab2 = '\t';
            cc_set_error("%s:%lld: expected KEY<TAB>TIME or KEY<TAB>TIME<TAB>TAGS (TIME unix seconds within years 0..9999, or YYYY-MM-DD[THH:MM:SS[Z]]), got '%.80s'", path,
                         (long long)i + 1, line);
            rc = -1;
            break;
        }
        char *tags = NULL;
        if (tags_text && cc_tags_normalize(tags_text, &tags) != 0) {
            cc_prefix_error("%s:%lld", path, (long long)i + 1);
            rc = -1;
            break;
        }
        *tab = 0;
        char *abs = images ? realpath(line, NULL) : NULL;
        int64_t at = find_keyed(by_text, set->n, abs ? abs : line);
        free(abs);
        if (at < 0) {
            free(tags);
            unmatched++;
            continue;
        }
        if (t != NO_TIMESTAMP) {
            set->timestamps[at] = t;
            set->has_timestamps = 1;
        }
        if (tags) {
            free(set->tags[at]);
            set->tags[at] = tags;
            set->has_tags = 1;
        }
        matched++;
    }
    if (rc == 0 && unmatched)
        fprintf(stderr, "note: %s: %lld of %lld rows name no %s of this run\n", path, (long long)unmatched,
                (long long)(matched + unmatched), images ? "image" : "caption");
    free(by_text);
    cc_lines_free(&lines);
    return rc;
}

/* ---- the embedding cache */

typedef struct cache_stamp {
    char model[PATH_MAX];   /* realpath of the model directory */
    char model_files[128];  /* size:mtime of config.json and the weights */
    char kind[16];          /* images | texts */
    char scales[64];        /* "224,336" or "" */
    char long_text[32];     /* "window[:STRIDE]" or "" */
    char style[16];         /* images: "hf", or "" for openai (caches from before the key are openai) */
} cache_stamp;

static void file_stamp(const char *dir, const char *name, char *buf, size_t size) {
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) == 0)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%lld:%lld", *buf ? "," : "", (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
}

static const char *const cache_meta_keys[] = {"cache.model", "cache.model_files", "cache.kind", "cache.scales", "cache.style",
                                              "cache.long_text"};

static const char *stamp_field(const cache_stamp *s, int i) {
    const char *fields[] = {s->model, s->model_files, s->kind, s->scales, s->style, s->long_text};
    return fields[i];
}

typedef struct emb_cache {
    cc_index *idx;       /* NULL: no usable cache */
    keyed_index *by_key; /* sorted; index = id in idx */
    keyed_index *by_path;/* images: sorted by the path part of the key; index = id */
    int64_t n, n_paths;
} emb_cache;

static void cache_free(emb_cache *c) {
    cc_index_free(c->idx);
    free(c->by_key);
    free(c->by_path);
    memset(c, 0, sizeof *c);
}

static void default_cache_path(const char *index_path, const char *given, char *buf, size_t size) {
    if (given) snprintf(buf, size, "%s", given);
    else snprintf(buf, size, "%s%s", index_path, CACHE_SUFFIX);
}

/* Opens the cache when it exists and matches the stamp and the model's dimension; otherwise leaves
 * it empty (with a note). */
static int cache_open(emb_cache *c, const char *path, const cache_stamp *want, int dim) {
    memset(c, 0, sizeof *c);
    if (!cc_file_exists(path)) return 0;
    cc_index *idx = cc_index_load(path);
    if (!idx) {
        fprintf(stderr, "note: ignoring the embedding cache: %s\n", cc_last_error());
        return 0;
    }
    if (cc_index_dim(idx) != dim) {
        fprintf(stderr, "note: ignoring the embedding cache %s: its vectors have %d dimensions, the model's %d\n", path,
                cc_index_dim(idx), dim);
        cc_index_free(idx);
        return 0;
    }
    for (int i = 0; i < (int)(sizeof cache_meta_keys / sizeof *cache_meta_keys); i++) {
        const char *have = cc_index_get_meta(idx, cache_meta_keys[i]);
        if (!have && !strcmp(cache_meta_keys[i], "cache.style")) have = ""; /* a cache from before the key */
        if (!have || strcmp(have, stamp_field(want, i))) {
            fprintf(stderr, "note: the embedding cache %s was made with another model or options (%s); embedding again\n",
                    path, cache_meta_keys[i] + 6);
            cc_index_free(idx);
            return 0;
        }
    }
    int64_t n = cc_index_count(idx);
    c->idx = idx;
    c->by_key = cc_malloc((size_t)(n ? n : 1) * sizeof *c->by_key, "cache lookup");
    c->by_path = cc_malloc((size_t)(n ? n : 1) * sizeof *c->by_path, "cache lookup");
    if (!c->by_key || !c->by_path) {
        cache_free(c);
        return -1;
    }
    for (int64_t id = 0; id < n; id++) {
        const char *key = cc_index_item_text(idx, id);
        if (!key) continue;
        c->by_key[c->n++] = (keyed_index){key, id};
        const char *p = !strcmp(want->kind, "images") ? cache_key_path(key) : NULL;
        if (p) c->by_path[c->n_paths++] = (keyed_index){p, id};
    }
    qsort(c->by_key, (size_t)c->n, sizeof *c->by_key, compare_keyed);
    qsort(c->by_path, (size_t)c->n_paths, sizeof *c->by_path, compare_keyed);
    return 0;
}

static int64_t cache_find(const emb_cache *c, const char *key) {
    return c->idx ? find_keyed(c->by_key, c->n, key) : -1;
}

/* Writes keys + vectors as the new cache; extra (may be NULL) adds the old cache's other entries. */
static int cache_write(const char *path, const cache_stamp *stamp, int dim, int64_t n, char *const *keys,
                       const float *vectors, const emb_cache *extra) {
    cc_index *c = cc_index_create("Flat", dim, CC_METRIC_IP);
    int rc = c ? 0 : -1;
    for (int i = 0; i < (int)(sizeof cache_meta_keys / sizeof *cache_meta_keys) && rc == 0; i++)
        rc = cc_index_set_meta(c, cache_meta_keys[i], stamp_field(stamp, i));
    if (rc == 0 && n) rc = cc_index_add_items(c, n, vectors, NULL, (const char *const *)keys, NULL);
    if (rc == 0 && extra && extra->idx) {
        /* old entries that this run did not touch */
        keyed_index *mine = cc_malloc((size_t)(n ? n : 1) * sizeof *mine, "cache merge");
        float *row = cc_malloc((size_t)dim * sizeof(float), "cache merge");
        rc = mine && row ? 0 : -1;
        for (int64_t i = 0; i < n && rc == 0; i++) mine[i] = (keyed_index){keys[i], i};
        if (rc == 0) qsort(mine, (size_t)n, sizeof *mine, compare_keyed);
        for (int64_t i = 0; i < extra->n && rc == 0; i++) {
            const char *key = extra->by_key[i].key;
            if (find_keyed(mine, n, key) >= 0) continue;
            rc = cc_index_reconstruct(extra->idx, extra->by_key[i].index, row);
            if (rc == 0) rc = cc_index_add_items(c, 1, row, NULL, &key, NULL);
        }
        free(mine);
        free(row);
    }
    if (rc == 0) rc = cc_index_save(c, path);
    if (rc != 0) cc_prefix_error("writing the embedding cache %s", path);
    cc_index_free(c);
    return rc;
}

/* ---- embedding */

typedef struct embed_counts {
    int64_t embedded, cached, skipped, truncated;
} embed_counts;

static int parse_long_text(const char *text, cc_long_text_mode *mode, int64_t *stride) {
    *mode = CC_LONG_TEXT_TRUNCATE;
    if (!text || !*text || !strcmp(text, "truncate")) return 0;
    if (strncmp(text, "window", 6) || (text[6] && text[6] != ':')) {
        cc_set_error("--long-text must be truncate or window, got '%s'", text);
        return -1;
    }
    *mode = CC_LONG_TEXT_WINDOW;
    if (text[6] == ':') *stride = strtoll(text + 7, NULL, 10);
    return 0;
}

static int make_stamp(cache_stamp *s, const char *model_dir, const char *kind, const char *scales_text,
                      const char *long_text, int64_t window_stride, cc_preprocess_style style, int *dim,
                      int *native_size) {
    memset(s, 0, sizeof *s);
    if (!realpath(model_dir, s->model) || !app_is_directory(s->model)) {
        cc_set_error("%s: no such model directory", model_dir);
        return -1;
    }
    char config_path[PATH_MAX + 16];
    snprintf(config_path, sizeof config_path, "%s/config.json", s->model);
    cc_clip_config cfg;
    if (cc_clip_config_load(config_path, &cfg) != 0) return -1;
    *dim = cfg.projection_dim;
    *native_size = cfg.vision.image_size;
    file_stamp(s->model, "config.json", s->model_files, sizeof s->model_files);
    file_stamp(s->model, "model.safetensors", s->model_files, sizeof s->model_files);
    file_stamp(s->model, "model.safetensors.index.json", s->model_files, sizeof s->model_files);
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    if (!strcmp(kind, "images") && scales_text && *scales_text) {
        int scales[APP_MAX_SCALES], n = 0;
        if (app_parse_scales(scales_text, scales, &n) != 0) return -1;
        for (int i = 0; i < n; i++)
            if (scales[i] != cfg.vision.image_size && cc_clip_check_image_size(&cfg, scales[i]) != 0) {
                cc_prefix_error("--multiscale %s", scales_text);
                return -1;
            }
        if (!(n == 1 && scales[0] == cfg.vision.image_size))
            for (int i = 0; i < n; i++)
                snprintf(s->scales + strlen(s->scales), sizeof s->scales - strlen(s->scales), "%s%d", i ? "," : "",
                         scales[i]);
    }
    if (!strcmp(kind, "images") && style != CC_PREPROCESS_OPENAI)
        snprintf(s->style, sizeof s->style, "%s", cc_preprocess_style_name(style));
    cc_long_text_mode mode;
    int64_t stride = window_stride;
    if (!strcmp(kind, "texts")) {
        if (parse_long_text(long_text, &mode, &stride) != 0) return -1;
        if (stride < 0 || stride > 1000) {
            cc_set_error("--window-stride %lld is out of range", (long long)stride);
            return -1;
        }
        if (mode == CC_LONG_TEXT_WINDOW) {
            if (stride) snprintf(s->long_text, sizeof s->long_text, "window:%lld", (long long)stride);
            else snprintf(s->long_text, sizeof s->long_text, "window");
        }
    }
    return 0;
}

static void warn_unreadable(const char *path, int64_t *n_warned) {
    if ((*n_warned)++ >= MAX_SKIP_WARNINGS) return;
    cc_image img;
    if (cc_image_load(path, &img) == 0) {
        cc_image_free(&img);
        fprintf(stderr, "warning: %s: could not be embedded, skipped\n", path);
    } else {
        fprintf(stderr, "warning: skipping unreadable image: %s\n", cc_last_error());
    }
}

/* Gives every item of the set an embedding (cache or model); ok[i] = 0 for unreadable images.
 * The model is opened only when something needs embedding. */
static int embed_items(const cache_stamp *stamp, int dim, item_set *set, const emb_cache *cache, float *vectors,
                       uint8_t *ok, embed_counts *counts) {
    int images = !strcmp(stamp->kind, "images");
    int64_t *todo = cc_malloc((size_t)(set->n ? set->n : 1) * sizeof(int64_t), "items to embed");
    if (!todo) return -1;
    int64_t n_todo = 0;
    int rc = 0;
    for (int64_t i = 0; i < set->n && rc == 0; i++) {
        int64_t id = cache_find(cache, set->keys[i]);
        ok[i] = id >= 0;
        if (id >= 0) {
            rc = cc_index_reconstruct(cache->idx, id, vectors + i * dim);
            counts->cached++;
        } else {
            todo[n_todo++] = i;
        }
    }
    if (rc != 0 || n_todo == 0) {
        free(todo);
        return rc;
    }
    app_model am;
    if (app_model_open(&am, stamp->model, stamp->scales) != 0) {
        free(todo);
        return -1;
    }
    am.session.preprocess.style = *stamp->style ? CC_PREPROCESS_HF : CC_PREPROCESS_OPENAI;
    int64_t stride = 0;
    parse_long_text(stamp->long_text, &am.long_text, &stride);
    am.window_stride = (int)stride;
    const char **inputs = cc_malloc((size_t)n_todo * sizeof *inputs, "items to embed");
    float *out = cc_malloc((size_t)(n_todo * dim) * sizeof(float), "embeddings");
    int64_t *kept = cc_malloc((size_t)n_todo * sizeof(int64_t), "kept rows");
    rc = inputs && out && kept ? 0 : -1;
    if (rc == 0 && am.dim != dim) {
        cc_set_error("%s: the model gives %d-d embeddings, config.json says %d", stamp->model, am.dim, dim);
        rc = -1;
    }
    for (int64_t j = 0; j < n_todo && rc == 0; j++) inputs[j] = set->texts[todo[j]];
    cc_progress progress;
    cc_progress_start(&progress, "embed", n_todo, images ? "img" : "txt");
    int64_t n_kept = 0;
    if (rc == 0 && images) {
        rc = app_embed_image_files(&am, inputs, n_todo, &progress, out, kept, &n_kept);
    } else if (rc == 0) {
        rc = app_embed_texts(&am, inputs, n_todo, NULL, &progress, out, &counts->truncated);
        for (int64_t j = 0; j < n_todo; j++) kept[j] = j;
        n_kept = n_todo;
    }
    cc_progress_finish(&progress);
    if (rc == 0) {
        int64_t next = 0, n_warned = 0;
        for (int64_t j = 0; j < n_todo; j++) {
            if (next < n_kept && kept[next] == j) {
                memcpy(vectors + todo[j] * dim, out + next * dim, (size_t)dim * sizeof(float));
                ok[todo[j]] = 1;
                next++;
                counts->embedded++;
            } else {
                warn_unreadable(inputs[j], &n_warned);
                counts->skipped++;
            }
        }
    }
    free(inputs);
    free(out);
    free(kept);
    free(todo);
    app_model_close(&am);
    return rc;
}

/* Keeps the items with ok[i] (texts, keys, timestamps and vectors moved down); returns the count. */
static int64_t compact_items(item_set *set, const uint8_t *ok, float *vectors, int dim) {
    int64_t kept = 0;
    for (int64_t i = 0; i < set->n; i++) {
        if (!ok[i]) {
            free(set->texts[i]);
            free(set->keys[i]);
            free(set->tags[i]);
            continue;
        }
        set->texts[kept] = set->texts[i];
        set->keys[kept] = set->keys[i];
        set->timestamps[kept] = set->timestamps[i];
        set->tags[kept] = set->tags[i];
        if (kept != i) memmove(vectors + kept * dim, vectors + i * dim, (size_t)dim * sizeof(float));
        kept++;
    }
    set->n = kept;
    return kept;
}

static int collect_items(const model_args *a, const char *kind, item_set *set) {
    int rc = !strcmp(kind, "images") ? collect_images(a->images, set) : collect_texts(a->texts, set);
    if (rc == 0 && a->meta) rc = apply_meta(a->meta, !strcmp(kind, "images"), set);
    if (set->n_missing > MAX_SKIP_WARNINGS || set->n_bad_text > MAX_SKIP_WARNINGS)
        fprintf(stderr, "warning: %lld missing file(s) and %lld non-UTF-8 item(s) skipped in all\n",
                (long long)set->n_missing, (long long)set->n_bad_text);
    if (set->n_duplicates) fprintf(stderr, "note: %lld image(s) listed more than once, indexed once\n", (long long)set->n_duplicates);
    return rc;
}

static int set_model_meta(cc_index *idx, const cache_stamp *stamp, int dim) {
    char dim_text[16];
    snprintf(dim_text, sizeof dim_text, "%d", dim);
    if (cc_index_set_meta(idx, APP_META_MODEL, stamp->model) || cc_index_set_meta(idx, APP_META_KIND, stamp->kind) ||
        cc_index_set_meta(idx, APP_META_DIM, dim_text) ||
        cc_index_set_meta(idx, APP_META_SCALES, *stamp->scales ? stamp->scales : NULL) ||
        cc_index_set_meta(idx, APP_META_LONG_TEXT, *stamp->long_text ? stamp->long_text : NULL) ||
        cc_index_set_meta(idx, APP_META_STYLE,
                          strcmp(stamp->kind, "images") ? NULL : *stamp->style ? stamp->style : "openai"))
        return -1;
    return 0;
}

static void print_counts(const embed_counts *c, int64_t skipped_before, double seconds) {
    printf("%lld embedded, %lld from cache, %lld skipped, %.2f s\n", (long long)c->embedded, (long long)c->cached,
           (long long)(c->skipped + skipped_before), seconds);
    if (c->truncated)
        fprintf(stderr, "note: %lld caption(s) longer than the context were truncated (--long-text window averages windows)\n",
                (long long)c->truncated);
}

typedef struct build_opts {
    const char *type, *metric_name, *out;
    int64_t ef_construction, train_size, seed, shards;
} build_opts;

/* --shards N: N shard files and a manifest at out (index/manifest.h), each shard of tmpl's type,
 * parameters and metadata. */
static int build_shards(const char *out, const cc_index *tmpl, int64_t shards, int64_t ef_construction, int64_t seed,
                        int64_t n, const float *x, const int64_t *ids, const char *const *texts,
                        const int64_t *timestamps, const char *const *tags) {
    if (shards < 1 || shards > CC_MANIFEST_MAX_SHARDS) {
        cc_set_error("--shards must be between 1 and %d, got %lld", CC_MANIFEST_MAX_SHARDS, (long long)shards);
        return -1;
    }
    cc_shard_spec spec = {cc_index_desc(tmpl), cc_index_dim(tmpl), cc_index_metric(tmpl), (int)shards,
                          ef_construction, seed, tmpl};
    return cc_shards_build(out, &spec, n, x, ids, texts, timestamps, tags);
}

static int train_subset(cc_index *idx, int64_t n, int d, const float *x, int64_t train_size) {
    if (cc_index_is_trained(idx)) return 0;
    int64_t n_train = train_size > 0 && train_size < n ? train_size : n;
    if (n_train == n) return cc_index_train(idx, n, x);
    float *subset = cc_malloc((size_t)n_train * d * sizeof(float), "training subset");
    if (!subset) return -1;
    for (int64_t i = 0; i < n_train; i++) memcpy(subset + i * d, x + (i * n / n_train) * d, (size_t)d * 4);
    int rc = cc_index_train(idx, n_train, subset);
    free(subset);
    return rc;
}

static int build_with_model(const cc_command *cmd, const model_args *a, const build_opts *b) {
    double t0 = cc_now();
    const char *kind = a->images ? "images" : "texts";
    item_set set = {0};
    emb_cache cache = {0};
    float *vectors = NULL;
    uint8_t *ok = NULL;
    cc_index *idx = NULL;
    embed_counts counts = {0};
    cache_stamp stamp;
    char cache_path[PATH_MAX + 16];
    int dim, native, status = 1;
    cc_metric metric;
    cc_preprocess_style style = CC_PREPROCESS_OPENAI;
    if (parse_metric(b->metric_name, &metric) != 0) goto fail;
    if (a->style && cc_preprocess_style_parse(a->style, &style) != 0) goto fail;
    if (make_stamp(&stamp, a->model, kind, a->scales, a->long_text, a->window_stride, style, &dim, &native) != 0)
        goto fail;
    if (collect_items(a, kind, &set) != 0) goto fail;
    if (set.n == 0) {
        cc_set_error("%s: no %s to index", a->images ? a->images : a->texts,
                     a->images ? "images (*.jpg, *.jpeg, *.png, *.webp, *.gif, *.bmp, *.tif, *.tiff)" : "captions");
        goto fail;
    }
    default_cache_path(b->out, a->cache, cache_path, sizeof cache_path);
    if (!a->no_cache && cache_open(&cache, cache_path, &stamp, dim) != 0) goto fail;
    vectors = cc_malloc((size_t)(set.n * dim) * sizeof(float), "embeddings");
    ok = cc_calloc((size_t)set.n, 1, "item flags");
    if (!vectors || !ok) goto fail;
    if (embed_items(&stamp, dim, &set, &cache, vectors, ok, &counts) != 0) goto fail;
    int64_t n = compact_items(&set, ok, vectors, dim);
    if (n == 0) {
        cc_set_error("none of the %lld image(s) could be read", (long long)counts.skipped);
        goto fail;
    }
    if (!(idx = cc_index_create(b->type, dim, metric))) goto fail;
    if (b->ef_construction && cc_index_set_param(idx, "efConstruction", b->ef_construction) < 0) goto fail;
    if (b->seed >= 0 && cc_index_set_param(idx, "seed", b->seed) < 0) goto fail;
    if (set_model_meta(idx, &stamp, dim) != 0) goto fail;
    if (b->shards) {
        if (build_shards(b->out, idx, b->shards, b->ef_construction, b->seed, n, vectors, NULL,
                         (const char *const *)set.texts, set.has_timestamps ? set.timestamps : NULL,
                         set.has_tags ? (const char *const *)set.tags : NULL) != 0)
            goto fail;
    } else {
        if (train_subset(idx, n, dim, vectors, b->train_size) != 0) goto fail;
        if (cc_index_add_items_tagged(idx, n, vectors, NULL, (const char *const *)set.texts,
                                      set.has_timestamps ? set.timestamps : NULL,
                                      set.has_tags ? (const char *const *)set.tags : NULL) != 0)
            goto fail;
        if (cc_index_save(idx, b->out) != 0) goto fail;
    }
    if (!a->no_cache && cache_write(cache_path, &stamp, dim, n, set.keys, vectors, NULL) != 0)
        fprintf(stderr, "warning: %s (the index itself is saved)\n", cc_last_error());
    printf("indexed %lld %s into %s (%s, %d-d", (long long)n, kind, b->out, cc_index_desc(idx), dim);
    if (b->shards) printf(", %lld shards", (long long)b->shards);
    printf("): ");
    print_counts(&counts, set.n_missing + set.n_bad_text, cc_now() - t0);
    status = 0;
    goto done;
fail:
    cc_command_error(cmd, cc_last_error());
done:
    cc_index_free(idx);
    cache_free(&cache);
    item_set_free(&set);
    free(vectors);
    free(ok);
    return status;
}

/* Items of a model-built index by their stored text (path or caption): sorted; index = id. */
static keyed_index *index_items_by_text(const cc_index *idx, int64_t *n_out) {
    int64_t n = cc_index_count(idx), found = 0;
    keyed_index *items = cc_malloc((size_t)(n ? n : 1) * sizeof *items, "index items");
    if (!items) return NULL;
    for (int64_t id = 0; found < n && id < MAX_ITEM_ID_SCAN; id++) {
        const char *text = cc_index_item_text(idx, id);
        if (text) items[found++] = (keyed_index){text, id};
    }
    qsort(items, (size_t)found, sizeof *items, compare_keyed);
    *n_out = found;
    return items;
}

static int add_with_model(const cc_command *cmd, const model_args *a, const char *index_path, const char *out) {
    double t0 = cc_now();
    item_set set = {0};
    emb_cache cache = {0};
    float *vectors = NULL;
    uint8_t *ok = NULL;
    keyed_index *existing = NULL;
    int64_t *changed_ids = NULL, n_changed = 0, n_present = 0, n_existing = 0;
    embed_counts counts = {0};
    cache_stamp stamp;
    char cache_path[PATH_MAX + 16];
    int dim, native, status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    const char *kind = cc_index_get_meta(idx, APP_META_KIND);
    if (!kind || (strcmp(kind, "images") && strcmp(kind, "texts"))) {
        cc_set_error("%s was not built from images or captions with a model (index build --model); add vectors with "
                     "--vectors",
                     index_path);
        goto fail;
    }
    if ((a->images != NULL) != !strcmp(kind, "images")) {
        cc_set_error("%s holds %s: add them with --%s", index_path, kind, kind);
        goto fail;
    }
    const char *model_dir = app_index_model_dir(idx, a->model);
    if (!model_dir) goto fail;
    cc_preprocess_style style, asked;
    if (app_index_style(idx, NULL, &style) != 0) goto fail;
    if (a->style && cc_preprocess_style_parse(a->style, &asked) != 0) goto fail;
    if (a->style && asked != style) {
        cc_set_error("%s was built with --style %s; its new items must be too (build a new index for %s)", index_path,
                     cc_preprocess_style_name(style), a->style);
        goto fail;
    }
    if (make_stamp(&stamp, model_dir, kind, cc_index_get_meta(idx, APP_META_SCALES),
                   cc_index_get_meta(idx, APP_META_LONG_TEXT), 0, style, &dim, &native) != 0)
        goto fail;
    if (dim != cc_index_dim(idx)) {
        cc_set_error("the model %s gives %d-d embeddings but %s holds %d-d vectors", stamp.model, dim, index_path,
                     cc_index_dim(idx));
        goto fail;
    }
    if (collect_items(a, kind, &set) != 0) goto fail;
    default_cache_path(out, a->cache, cache_path, sizeof cache_path);
    if (!a->no_cache && cache_open(&cache, cache_path, &stamp, dim) != 0) goto fail;
    /* drop what the index already holds; an image whose file changed since is replaced */
    if (!(existing = index_items_by_text(idx, &n_existing))) goto fail;
    changed_ids = cc_malloc((size_t)(set.n ? set.n : 1) * sizeof(int64_t), "changed items");
    ok = cc_calloc((size_t)(set.n ? set.n : 1), 1, "item flags");
    if (!changed_ids || !ok) goto fail;
    int64_t kept = 0;
    for (int64_t i = 0; i < set.n; i++) {
        int64_t id = find_keyed(existing, n_existing, set.texts[i]);
        int replace = 0;
        if (id >= 0 && !strcmp(kind, "images") && cache.idx && cache_find(&cache, set.keys[i]) < 0) {
            int64_t old = find_keyed(cache.by_path, cache.n_paths, set.texts[i]);
            replace = old >= 0; /* the cache knew this path with another size or mtime */
        }
        if (id >= 0 && !replace) {
            free(set.texts[i]);
            free(set.keys[i]);
            free(set.tags[i]);
            n_present++;
            continue;
        }
        if (replace) changed_ids[n_changed++] = id;
        set.texts[kept] = set.texts[i];
        set.keys[kept] = set.keys[i];
        set.timestamps[kept] = set.timestamps[i];
        set.tags[kept] = set.tags[i];
        kept++;
    }
    set.n = kept;
    if (set.n) {
        vectors = cc_malloc((size_t)(set.n * dim) * sizeof(float), "embeddings");
        if (!vectors) goto fail;
        if (embed_items(&stamp, dim, &set, &cache, vectors, ok, &counts) != 0) goto fail;
        compact_items(&set, ok, vectors, dim);
    }
    if (n_changed && cc_index_remove(idx, n_changed, changed_ids) < 0) goto fail;
    if (set.n && cc_index_add_items_tagged(idx, set.n, vectors, NULL, (const char *const *)set.texts,
                                           set.has_timestamps ? set.timestamps : NULL,
                                           set.has_tags ? (const char *const *)set.tags : NULL) != 0)
        goto fail;
    if (a->model && cc_index_set_meta(idx, APP_META_MODEL, stamp.model) != 0) goto fail;
    /* nothing new: the file is left as it is (a server watching it does not reload for nothing) */
    int changed = set.n || n_changed || a->model || strcmp(out, index_path);
    if (changed && cc_index_save(idx, out) != 0) goto fail;
    if (!a->no_cache && (set.n || !cache.idx) && cache_write(cache_path, &stamp, dim, set.n, set.keys, vectors, &cache) != 0)
        fprintf(stderr, "warning: %s (the index itself is saved)\n", cc_last_error());
    printf("added %lld %s to %s (%s, %d-d, now %lld items; %lld already indexed, %lld changed): ", (long long)set.n,
           kind, out, cc_index_desc(idx), dim, (long long)cc_index_count(idx), (long long)(n_present),
           (long long)n_changed);
    print_counts(&counts, set.n_missing + set.n_bad_text, cc_now() - t0);
    status = 0;
    goto done;
fail:
    cc_command_error(cmd, cc_last_error());
done:
    cc_index_free(idx);
    cache_free(&cache);
    item_set_free(&set);
    free(vectors);
    free(ok);
    free(existing);
    free(changed_ids);
    return status;
}

/* ------------------------------------------------------------------ build */

static int run_build(int argc, char **argv);
const cc_command cmd_index_build = {
    "index build",
    "--type DESC --vectors X.npy --out FILE [options]\n"
    "       clipc index build --model DIR (--images DIR|LIST | --texts FILE) [--type DESC] --out FILE [options]",
    "Build an index (Flat, IVF<n>,Flat, IVF<n>,PQ<M>[,RFlat], PQ<M>, PQ<M>x4fs, IVF<n>,PQ<M>x4fs, HNSW<M>) from "
    "vectors, or embed a folder of "
    "images or a caption file with a model and index them.",
    run_build};

static int run_build(int argc, char **argv) {
    const char *type = NULL, *vectors = NULL, *ids_path = NULL, *metric_name = NULL, *out = NULL, *texts_path = NULL;
    const char *model = NULL;
    int64_t ef_construction = 0, train_size = 0, seed = -1;
    model_args ma = {0};
    const char *precision = NULL;
    int64_t shards = 0;
    cc_option options[] = {
        {"--type", CC_OPT_STRING, &type, "DESC", "index type, faiss factory style (e.g. HNSW32, IVF1024,PQ64; default Flat with --model)"},
        {"--vectors", CC_OPT_STRING, &vectors, "X.npy", "float32 vectors, rows x dimension"},
        {"--ids", CC_OPT_STRING, &ids_path, "IDS.npy", "int64 id per vector (default 0, 1, 2, ...)"},
        {"--texts", CC_OPT_STRING, &texts_path, "FILE", "captions to embed and index, one per line (with --vectors: the text of each vector)"},
        {"--images", CC_OPT_STRING, &ma.images, "DIR|LIST", "images to embed and index: a folder (recursive; jpg/jpeg/png/webp/gif/bmp/tif/tiff) or a list file"},
        {"--model", CC_OPT_STRING, &model, "DIR", "model directory that embeds --images/--texts (with --vectors: a name for the metadata)"},
        {"--meta", CC_OPT_STRING, &ma.meta, "FILE.tsv", "timestamps and tags: PATH-or-CAPTION<TAB>TIME[<TAB>tag,tag] (TIME unix seconds or YYYY-MM-DD[THH:MM:SS], may be empty with tags)"},
        {"--multiscale", CC_OPT_STRING, &ma.scales, "S1,S2", "images: average the features at these image sizes (e.g. 224,336)"},
        {"--style", CC_OPT_STRING, &ma.style, "NAME", CC_STYLE_HELP " (recorded in the index)"},
        {"--long-text", CC_OPT_STRING, &ma.long_text, "MODE", "captions longer than the context: truncate (default) or window"},
        {"--window-stride", CC_OPT_INT, &ma.window_stride, "N", "window mode: tokens between window starts"},
        {"--cache", CC_OPT_STRING, &ma.cache, "FILE", "embedding cache (default OUT.cache)"},
        {"--no-cache", CC_OPT_FLAG, &ma.no_cache, NULL, "neither read nor write the embedding cache"},
        {"--metric", CC_OPT_STRING, &metric_name, "ip|l2", "inner product (default) or squared L2"},
        {"--ef-construction", CC_OPT_INT, &ef_construction, "N", "HNSW build breadth (default 200)"},
        {"--train-size", CC_OPT_INT, &train_size, "N", "vectors used to train IVF/PQ (default: all)"},
        {"--seed", CC_OPT_INT, &seed, "N", "seed for training samples and HNSW levels"},
        {"--out", CC_OPT_STRING, &out, "FILE", "index file to write"},
        {"--shards", CC_OPT_INT, &shards, "N", "write N shard files OUT.shard<s> (id i in shard i % N) and a JSON manifest at OUT"},
        {"--precision", CC_OPT_STRING, &precision, "P", CC_PRECISION_HELP},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_build, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (cc_apply_precision(&cmd_index_build, precision) != 0) return 2;
    if (!vectors && (ma.images || (model && texts_path))) {
        if (!model || !out || (ma.images && texts_path) || ids_path) {
            fprintf(stderr, "clipc index build: with --model, give --out and one of --images or --texts (no --ids)\n");
            return 2;
        }
        ma.model = model;
        if (texts_path) ma.texts = texts_path;
        if (shards && train_size) {
            fprintf(stderr, "clipc index build: --train-size does not go with --shards (each shard trains on its own vectors)\n");
            return 2;
        }
        build_opts b = {type ? type : "Flat", metric_name, out, ef_construction, train_size, seed, shards};
        return build_with_model(&cmd_index_build, &ma, &b);
    }
    if (ma.images || ma.meta || ma.scales || ma.long_text || ma.cache || ma.no_cache || ma.style) {
        fprintf(stderr, "clipc index build: --images, --meta, --multiscale, --long-text, --style and --cache need --model (and no --vectors)\n");
        return 2;
    }
    if (!type || !vectors || !out) {
        fprintf(stderr, "clipc index build: --type, --vectors and --out are required\n");
        return 2;
    }
    cc_metric metric;
    if (parse_metric(metric_name, &metric) != 0) return cc_command_error(&cmd_index_build, cc_last_error());
    cc_npy x = {0}, ids = {0};
    char *text_buf = NULL;
    const char **texts = NULL;
    cc_index *idx = NULL;
    int status = 1;
    if (load_matrix(vectors, "vectors", 0, &x) != 0) goto fail;
    int64_t n = x.shape[0];
    int d = (int)x.shape[1];
    if (n == 0) {
        cc_set_error("%s: no vectors", vectors);
        goto fail;
    }
    if (ids_path && load_ids(ids_path, n, &ids) != 0) goto fail;
    if (texts_path && !(texts = load_texts(texts_path, n, &text_buf))) goto fail;
    if (shards && train_size) {
        cc_set_error("--train-size does not go with --shards (each shard trains on its own vectors)");
        goto fail;
    }
    if (!(idx = cc_index_create(type, d, metric))) goto fail;
    if (ef_construction && cc_index_set_param(idx, "efConstruction", ef_construction) < 0) goto fail;
    if (seed >= 0 && cc_index_set_param(idx, "seed", seed) < 0) goto fail;
    if (model && cc_index_set_meta(idx, "model", model) != 0) goto fail;
    if (shards) {
        double ts = cc_now();
        if (build_shards(out, idx, shards, ef_construction, seed, n, x.data, ids_path ? ids.data : NULL, texts, NULL, NULL) != 0)
            goto fail;
        printf("built %s (%d-d, %s) from %lld vectors in %lld shards in %.2f s -> %s\n", cc_index_desc(idx), d,
               cc_metric_name(metric), (long long)n, (long long)shards, cc_now() - ts, out);
        status = 0;
        goto done;
    }
    double t0 = cc_now();
    if (train_subset(idx, n, d, x.data, train_size) != 0) goto fail;
    double t1 = cc_now();
    if (cc_index_add_items(idx, n, x.data, ids_path ? ids.data : NULL, texts, NULL) != 0) goto fail;
    double t2 = cc_now();
    if (cc_index_save(idx, out) != 0) goto fail;
    int64_t bytes = cc_index_memory_bytes(idx);
    printf("built %s (%d-d, %s) from %lld vectors in %.2f s (train %.2f s, add %.2f s) at %.0f vectors/s, "
           "%.1f bytes/vector -> %s\n",
           cc_index_desc(idx), d, cc_metric_name(metric), (long long)n, t2 - t0, t1 - t0, t2 - t1,
           (double)n / (t2 - t0 > 0 ? t2 - t0 : 1e-9), (double)bytes / (double)n, out);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_build, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&x);
    if (ids_path) cc_npy_free(&ids);
    free(texts);
    free(text_buf);
    return status;
}

/* ------------------------------------------------------------------ add / remove */

static int run_add(int argc, char **argv);
const cc_command cmd_index_add = {
    "index add",
    "--index FILE --vectors X.npy [--ids IDS.npy] [--texts FILE]\n"
    "       clipc index add --index FILE (--images DIR|LIST | --texts FILE) [--model DIR] [--meta FILE.tsv]",
    "Add vectors (and their texts) to an existing index file, or embed and add new images / captions to an index "
    "built with --model.",
    run_add};

/* index add over a shard manifest: each row into shard id % N, changed shards and the manifest rewritten. */
static int add_to_shards(const char *manifest, const char *vectors, const char *ids_path, const char *texts_path) {
    cc_shards sh;
    cc_npy x = {0}, ids = {0};
    char *text_buf = NULL;
    const char **texts = NULL;
    int status = 1;
    if (cc_shards_open(manifest, &sh) != 0) return cc_command_error(&cmd_index_add, cc_last_error());
    if (load_matrix(vectors, "vectors", sh.m.dim, &x) != 0) goto fail;
    if (ids_path && load_ids(ids_path, x.shape[0], &ids) != 0) goto fail;
    if (texts_path && !(texts = load_texts(texts_path, x.shape[0], &text_buf))) goto fail;
    double t0 = cc_now();
    if (cc_shards_add(&sh, manifest, x.shape[0], x.data, ids_path ? ids.data : NULL, texts, NULL, NULL) != 0) goto fail;
    printf("added %lld vectors in %.2f s; %s: %s, %lld vectors in %d shards\n", (long long)x.shape[0], cc_now() - t0,
           manifest, sh.m.type, (long long)cc_shards_count(&sh), sh.m.n_shards);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_add, cc_last_error());
done:
    cc_shards_close(&sh);
    cc_npy_free(&x);
    if (ids_path) cc_npy_free(&ids);
    free(texts);
    free(text_buf);
    return status;
}

/* A manifest at --index: only the --vectors form, in place. */
static int manifest_form_ok(const cc_command *cmd, const char *path, const char *out, int model_form) {
    if (model_form) {
        fprintf(stderr, "clipc %s: %s is a shard manifest: it takes --vectors (embed with clipc embed first); --images/--texts with a model need one index file\n", cmd->name, path);
        return 0;
    }
    if (out) {
        fprintf(stderr, "clipc %s: %s is a shard manifest: --out does not apply (it is updated in place, atomically)\n", cmd->name, path);
        return 0;
    }
    return 1;
}

static int run_add(int argc, char **argv) {
    const char *index_path = NULL, *vectors = NULL, *ids_path = NULL, *texts_path = NULL, *out = NULL;
    model_args ma = {0};
    const char *precision = NULL;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file (rewritten atomically unless --out) or shard manifest (each id into shard id % N)"},
        {"--vectors", CC_OPT_STRING, &vectors, "X.npy", "float32 vectors to add"},
        {"--ids", CC_OPT_STRING, &ids_path, "IDS.npy", "int64 id per vector (default: after the largest id)"},
        {"--texts", CC_OPT_STRING, &texts_path, "FILE", "captions to embed and add (with --vectors: one text per vector)"},
        {"--images", CC_OPT_STRING, &ma.images, "DIR|LIST", "images to embed and add (already indexed ones are skipped)"},
        {"--model", CC_OPT_STRING, &ma.model, "DIR", "model directory (default: the one recorded in the index)"},
        {"--meta", CC_OPT_STRING, &ma.meta, "FILE.tsv", "timestamps and tags of the new items (as index build)"},
        {"--style", CC_OPT_STRING, &ma.style, "NAME", "image preprocessing: openai or hf (default and only choice: the index's)"},
        {"--cache", CC_OPT_STRING, &ma.cache, "FILE", "embedding cache (default INDEX.cache)"},
        {"--no-cache", CC_OPT_FLAG, &ma.no_cache, NULL, "neither read nor write the embedding cache"},
        {"--out", CC_OPT_STRING, &out, "FILE", "write the result here instead"},
        {"--precision", CC_OPT_STRING, &precision, "P", CC_PRECISION_HELP},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_add, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (cc_apply_precision(&cmd_index_add, precision) != 0) return 2;
    if (index_path && cc_manifest_is_manifest(index_path)) {
        int model_form = !vectors || ma.images || ma.model || ma.meta || ma.cache || ma.no_cache || ma.style;
        if (!manifest_form_ok(&cmd_index_add, index_path, out, model_form)) return 2;
        return add_to_shards(index_path, vectors, ids_path, texts_path);
    }
    if (!vectors && index_path && (ma.images || texts_path)) {
        if (ma.images && texts_path) {
            fprintf(stderr, "clipc index add: give one of --images or --texts\n");
            return 2;
        }
        if (texts_path) ma.texts = texts_path;
        return add_with_model(&cmd_index_add, &ma, index_path, out ? out : index_path);
    }
    if (ma.images || ma.model || ma.meta || ma.cache || ma.no_cache || ma.style) {
        fprintf(stderr, "clipc index add: --images, --model, --meta and --cache are for model-built indexes (no --vectors)\n");
        return 2;
    }
    if (!index_path || !vectors) {
        fprintf(stderr, "clipc index add: --index and --vectors (or --images / --texts) are required\n");
        return 2;
    }
    cc_npy x = {0}, ids = {0};
    char *text_buf = NULL;
    const char **texts = NULL;
    int status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    if (load_matrix(vectors, "vectors", cc_index_dim(idx), &x) != 0) goto fail;
    if (ids_path && load_ids(ids_path, x.shape[0], &ids) != 0) goto fail;
    if (texts_path && !(texts = load_texts(texts_path, x.shape[0], &text_buf))) goto fail;
    double t0 = cc_now();
    if (cc_index_add_items(idx, x.shape[0], x.data, ids_path ? ids.data : NULL, texts, NULL) != 0) goto fail;
    if (cc_index_save(idx, out ? out : index_path) != 0) goto fail;
    printf("added %lld vectors in %.2f s; ", (long long)x.shape[0], cc_now() - t0);
    print_summary_line(idx, out ? out : index_path);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_add, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&x);
    if (ids_path) cc_npy_free(&ids);
    free(texts);
    free(text_buf);
    return status;
}

static int run_remove(int argc, char **argv);
const cc_command cmd_index_remove = {"index remove", "--index FILE --ids IDS.npy", "Remove ids from an index file.",
                                     run_remove};

/* index remove over a shard manifest: each id from shard id % N. */
static int remove_from_shards(const char *manifest, const char *ids_path) {
    cc_shards sh;
    cc_npy ids = {0};
    int status = 1;
    if (cc_shards_open(manifest, &sh) != 0) return cc_command_error(&cmd_index_remove, cc_last_error());
    if (cc_npy_read_i64(ids_path, &ids) != 0) goto fail;
    int64_t removed = cc_shards_remove(&sh, manifest, ids.count, ids.data);
    if (removed < 0) goto fail;
    printf("removed %lld of %lld ids; %s: %s, %lld vectors in %d shards\n", (long long)removed, (long long)ids.count,
           manifest, sh.m.type, (long long)cc_shards_count(&sh), sh.m.n_shards);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_remove, cc_last_error());
done:
    cc_shards_close(&sh);
    cc_npy_free(&ids);
    return status;
}

static int run_remove(int argc, char **argv) {
    const char *index_path = NULL, *ids_path = NULL, *out = NULL;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file (rewritten atomically unless --out) or shard manifest (each id from shard id % N)"},
        {"--ids", CC_OPT_STRING, &ids_path, "IDS.npy", "int64 ids to remove"},
        {"--out", CC_OPT_STRING, &out, "FILE", "write the result here instead"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_remove, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !ids_path) {
        fprintf(stderr, "clipc index remove: --index and --ids are required\n");
        return 2;
    }
    if (cc_manifest_is_manifest(index_path)) {
        if (!manifest_form_ok(&cmd_index_remove, index_path, out, 0)) return 2;
        return remove_from_shards(index_path, ids_path);
    }
    cc_npy ids = {0};
    int status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    if (cc_npy_read_i64(ids_path, &ids) != 0) goto fail;
    int64_t removed = cc_index_remove(idx, ids.count, ids.data);
    if (removed < 0 || cc_index_save(idx, out ? out : index_path) != 0) goto fail;
    printf("removed %lld of %lld ids; ", (long long)removed, (long long)ids.count);
    print_summary_line(idx, out ? out : index_path);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_remove, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&ids);
    return status;
}

/* ------------------------------------------------------------------ search */

static double recall_at_k(const int64_t *found, int64_t nq, int k, const cc_npy *gt) {
    int64_t hits = 0, total = 0;
    int gt_k = (int)gt->shape[1];
    for (int64_t i = 0; i < nq; i++)
        for (int b = 0; b < k; b++) {
            int64_t want = ((const int64_t *)gt->data)[i * gt_k + b];
            if (want < 0) continue;
            total++;
            for (int a = 0; a < k; a++)
                if (found[i * k + a] == want) {
                    hits++;
                    break;
                }
        }
    return total ? (double)hits / (double)total : 1.0;
}

static int run_search(int argc, char **argv);
const cc_command cmd_index_search = {
    "index search", "--index FILE --queries Q.npy --k K --out I.npy [options]",
    "Search an index; prints queries/s and, with --gt, recall@k.", run_search};

/* index search over a shard manifest: every shard searched, the top-k merged (index/manifest.c). */
static int search_manifest(const char *manifest, const char *queries, const char *out, const char *scores_path,
                           int k, const cc_search_params *params, const char *gt_path, const char *filter_text,
                           int load_flags) {
    cc_shards sh;
    cc_npy q = {0}, gt = {0};
    int64_t *ids = NULL;
    float *scores = NULL;
    int status = 1, have_gt = 0;
    cc_filter_expr filter = {0};
    cc_id_filter *allow = NULL; /* one allow-list per shard, over that shard's ids */
    if (cc_shards_open_flags(manifest, load_flags, &sh) != 0) return cc_command_error(&cmd_index_search, cc_last_error());
    if (filter_text) {
        int64_t n_allowed = 0;
        if (!(allow = cc_calloc((size_t)sh.m.n_shards, sizeof *allow, "filters"))) goto fail;
        if (cc_filter_parse(filter_text, strlen(filter_text), &filter) != 0) goto fail;
        for (int s = 0; s < sh.m.n_shards; s++) {
            int64_t n_s = 0;
            if (cc_filter_build(sh.idx[s], &filter, &allow[s], &n_s) != 0) goto fail;
            n_allowed += n_s;
        }
        if (!cc_quiet)
            fprintf(stderr, "filter: %lld of %lld items match\n", (long long)n_allowed, (long long)cc_shards_count(&sh));
    }
    if (load_matrix(queries, "queries", sh.m.dim, &q) != 0) goto fail;
    int64_t nq = q.shape[0];
    if (gt_path) {
        if (cc_npy_read_i64(gt_path, &gt) != 0) goto fail;
        have_gt = 1;
        if (gt.ndim != 2 || gt.shape[0] != nq || gt.shape[1] < k) {
            cc_set_error("%s: ground truth must be %lld x >=%d ids", gt_path, (long long)nq, k);
            goto fail;
        }
    }
    ids = cc_malloc((size_t)nq * (size_t)k * sizeof(int64_t), "result ids");
    scores = cc_malloc((size_t)nq * (size_t)k * sizeof(float), "result scores");
    if (!ids || !scores) goto fail;
    double t0 = cc_now();
    if (cc_shards_search_filtered(&sh, nq, q.data, k, params, allow, ids, scores) != 0) goto fail;
    double t = cc_now() - t0;
    int64_t shape[2] = {nq, k};
    if (cc_npy_write_i64(out, 2, shape, ids) != 0) goto fail;
    if (scores_path && cc_npy_write_f32(scores_path, 2, shape, scores) != 0) goto fail;
    printf("searched %lld queries (k=%d) over %d shards in %.4f s", (long long)nq, k, sh.m.n_shards, t);
    if (gt_path) printf(", recall@%d %.4f", k, recall_at_k(ids, nq, k, &gt));
    printf(" [%s]\n", sh.m.type);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_search, cc_last_error());
done:
    for (int s = 0; allow && s < sh.m.n_shards; s++) cc_filter_free_allow(&allow[s]);
    free(allow);
    cc_filter_expr_free(&filter);
    cc_shards_close(&sh);
    cc_npy_free(&q);
    if (have_gt) cc_npy_free(&gt);
    free(ids);
    free(scores);
    return status;
}

static int run_search(int argc, char **argv) {
    const char *index_path = NULL, *queries = NULL, *out = NULL, *scores_path = NULL, *gt_path = NULL, *filter_text = NULL;
    int64_t k = 10, nprobe = 0, ef = 0, rerank = 0, repeat = 1;
    int no_crc = 0;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file or shard manifest (every shard searched, top k merged)"},
        {"--queries", CC_OPT_STRING, &queries, "Q.npy", "float32 queries, rows x dimension"},
        {"--k", CC_OPT_INT, &k, "K", "neighbours per query (default 10)"},
        {"--out", CC_OPT_STRING, &out, "I.npy", "int64 ids, queries x k (-1 where none)"},
        {"--scores", CC_OPT_STRING, &scores_path, "S.npy", "float32 scores: inner product or squared L2"},
        {"--nprobe", CC_OPT_INT, &nprobe, "N", "IVF lists visited (default: the index's, tuned or 8)"},
        {"--ef", CC_OPT_INT, &ef, "N", "HNSW efSearch (default: the index's, tuned or 64)"},
        {"--rerank", CC_OPT_INT, &rerank, "R", "RFlat: re-score k*R PQ candidates exactly (default 4)"},
        {"--gt", CC_OPT_STRING, &gt_path, "GT.npy", "exact neighbour ids (queries x >=k) to report recall@k"},
        {"--repeat", CC_OPT_INT, &repeat, "N", "run the search N times, report the fastest (default 1)"},
        {"--filter", CC_OPT_STRING, &filter_text, "EXPR", "only items matching, e.g. 'time>=2024-01-01', 'id=3|5' or 'tag=cat|dog' (applied during the search)"},
        {"--no-crc", CC_OPT_FLAG, &no_crc, NULL, "skip the CRC check of the index file when loading"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_search, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !queries || !out) {
        fprintf(stderr, "clipc index search: --index, --queries and --out are required\n");
        return 2;
    }
    if (k < 1 || k > MAX_K) {
        fprintf(stderr, "clipc index search: --k must be between 1 and %d, got %lld\n", MAX_K, (long long)k);
        return 2;
    }
    if (nprobe < 0 || ef < 0 || rerank < 0 || repeat < 1) {
        fprintf(stderr, "clipc index search: --nprobe, --ef and --rerank must be >= 0, --repeat >= 1\n");
        return 2;
    }
    cc_npy q = {0}, gt = {0};
    int64_t *ids = NULL;
    float *scores = NULL;
    int status = 1;
    cc_filter_expr filter = {0};
    cc_id_filter allow = {0};
    int64_t n_allowed = 0;
    if (cc_manifest_is_manifest(index_path)) {
        cc_search_params mp = {.nprobe = (int)(nprobe > 1 << 30 ? 1 << 30 : nprobe),
                               .ef_search = (int)(ef > 1 << 20 ? 1 << 20 : ef),
                               .rerank = (int)(rerank > 1024 ? 1024 : rerank)};
        return search_manifest(index_path, queries, out, scores_path, (int)k, &mp, gt_path, filter_text,
                               no_crc ? CC_INDEX_LOAD_NO_CRC : 0);
    }
    double t_load = cc_now();
    cc_index *idx = cc_index_load_flags(index_path, no_crc ? CC_INDEX_LOAD_NO_CRC : 0);
    if (!idx) goto fail;
    t_load = cc_now() - t_load;
    if (load_matrix(queries, "queries", cc_index_dim(idx), &q) != 0) goto fail;
    int64_t nq = q.shape[0];
    if (k > cc_index_count(idx)) {
        cc_set_error("k = %lld is larger than the index (%lld vectors)", (long long)k, (long long)cc_index_count(idx));
        goto fail;
    }
    if (gt_path) {
        if (cc_npy_read_i64(gt_path, &gt) != 0) goto fail;
        if (gt.ndim != 2 || gt.shape[0] != nq || gt.shape[1] < k) {
            cc_set_error("%s: ground truth must be %lld x >=%lld ids", gt_path, (long long)nq, (long long)k);
            goto fail;
        }
    }
    cc_search_params params = {0};
    int nlist = (int)cc_index_get_param(idx, "nlist");
    if (nprobe) {
        if (cc_index_get_param(idx, "nprobe") < 0) fprintf(stderr, "note: --nprobe does not apply to %s, ignored\n", cc_index_desc(idx));
        else if (nlist > 0 && nprobe > nlist) {
            fprintf(stderr, "note: --nprobe %lld is more than nlist = %d; using %d\n", (long long)nprobe, nlist, nlist);
            nprobe = nlist;
        }
        params.nprobe = (int)(nprobe > 1 << 30 ? 1 << 30 : nprobe);
    }
    if (ef) {
        if (cc_index_get_param(idx, "efSearch") < 0) fprintf(stderr, "note: --ef does not apply to %s, ignored\n", cc_index_desc(idx));
        params.ef_search = (int)(ef > 1 << 20 ? 1 << 20 : ef);
    }
    if (filter_text) {
        if (cc_filter_parse(filter_text, strlen(filter_text), &filter) != 0 ||
            cc_filter_build(idx, &filter, &allow, &n_allowed) != 0)
            goto fail;
        params.filter = &allow;
        if (!cc_quiet) fprintf(stderr, "filter: %lld of %lld items match\n", (long long)n_allowed, (long long)cc_index_count(idx));
    }
    if (rerank) {
        if (cc_index_get_param(idx, "rerank") < 0) fprintf(stderr, "note: --rerank does not apply to %s, ignored\n", cc_index_desc(idx));
        params.rerank = (int)(rerank > 1024 ? 1024 : rerank);
    }
    ids = cc_malloc((size_t)nq * (size_t)k * sizeof(int64_t), "result ids");
    scores = cc_malloc((size_t)nq * (size_t)k * sizeof(float), "result scores");
    if (!ids || !scores) goto fail;
    double best = INFINITY;
    for (int64_t r = 0; r < repeat; r++) {
        double t0 = cc_now();
        if (cc_index_search_ex(idx, nq, q.data, (int)k, &params, ids, scores) != 0) goto fail;
        double t = cc_now() - t0;
        if (t < best) best = t;
    }
    int64_t shape[2] = {nq, k};
    if (cc_npy_write_i64(out, 2, shape, ids) != 0) goto fail;
    if (scores_path && cc_npy_write_f32(scores_path, 2, shape, scores) != 0) goto fail;
    printf("searched %lld queries (k=%lld) in %.4f s: %.1f queries/s", (long long)nq, (long long)k, best,
           (double)nq / (best > 0 ? best : 1e-9));
    if (gt_path) printf(", recall@%lld %.4f", (long long)k, recall_at_k(ids, nq, (int)k, &gt));
    printf(" [%s; load %.3f s]\n", cc_index_desc(idx), t_load);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_search, cc_last_error());
done:
    cc_filter_free_allow(&allow);
    cc_filter_expr_free(&filter);
    cc_index_free(idx);
    cc_npy_free(&q);
    if (gt_path) cc_npy_free(&gt);
    free(ids);
    free(scores);
    return status;
}

/* ------------------------------------------------------------------ tune */

static int run_tune(int argc, char **argv);
const cc_command cmd_index_tune = {
    "index tune", "--index FILE --queries Q.npy --target-recall R [options]",
    "Pick the smallest nprobe / efSearch reaching a recall@k against exact search; store it in the index.",
    run_tune};

static int run_tune(int argc, char **argv) {
    const char *index_path = NULL, *queries = NULL, *vectors = NULL, *out = NULL;
    double target = 0;
    int64_t k = 10, sample = 1000;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file (rewritten atomically unless --out)"},
        {"--queries", CC_OPT_STRING, &queries, "Q.npy", "sample queries, rows x dimension"},
        {"--target-recall", CC_OPT_FLOAT, &target, "R", "recall@k to reach, e.g. 0.95"},
        {"--k", CC_OPT_INT, &k, "K", "k of recall@k (default 10)"},
        {"--sample", CC_OPT_INT, &sample, "N", "queries used at most (default 1000)"},
        {"--vectors", CC_OPT_STRING, &vectors, "X.npy", "original vectors (PQ without RFlat: for exact neighbours)"},
        {"--out", CC_OPT_STRING, &out, "FILE", "write the tuned index here instead"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_tune, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !queries || !(target > 0 && target <= 1)) {
        fprintf(stderr, "clipc index tune: --index, --queries and --target-recall in (0, 1] are required\n");
        return 2;
    }
    if (k < 1 || k > MAX_K || sample < 1) {
        fprintf(stderr, "clipc index tune: --k must be between 1 and %d (got %lld), --sample at least 1\n", MAX_K,
                (long long)k);
        return 2;
    }
    cc_npy q = {0}, x = {0};
    int status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    if (load_matrix(queries, "queries", cc_index_dim(idx), &q) != 0) goto fail;
    if (vectors && load_matrix(vectors, "vectors", cc_index_dim(idx), &x) != 0) goto fail;
    int64_t nq = q.shape[0] < sample ? q.shape[0] : sample;
    if (nq < 1) {
        cc_set_error("%s: no queries", queries);
        goto fail;
    }
    cc_tune_result res;
    double t0 = cc_now();
    if (cc_index_tune(idx, nq, q.data, (int)k, target, vectors ? x.data : NULL, vectors ? x.shape[0] : 0, &res) != 0)
        goto fail;
    if (cc_index_save(idx, out ? out : index_path) != 0) goto fail;
    printf("tuned %s in %.1f s on %lld queries: ", cc_index_desc(idx), cc_now() - t0, (long long)nq);
    if (res.ef_search) printf("efSearch %d", res.ef_search);
    if (res.nprobe) printf("nprobe %d", res.nprobe);
    if (res.rerank) printf(", rerank %d", res.rerank);
    printf(" gives recall@%lld %.4f at %.0f queries/s%s -> %s\n", (long long)k, res.recall, res.queries_per_s,
           res.reached ? "" : " (target NOT reached at the largest setting)", out ? out : index_path);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_tune, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&q);
    if (vectors) cc_npy_free(&x);
    return status;
}

/* ------------------------------------------------------------------ info */

static int run_info(int argc, char **argv);
const cc_command cmd_index_info = {"index info", "FILE", "Describe an index file: type, counts, parameters, metadata (a shard manifest: its fields and each shard).",
                                   run_info};

/* index info of a shard manifest: the manifest's fields, then one line per shard. */
static int info_shards(const char *path) {
    cc_shards sh;
    double t0 = cc_now();
    if (cc_shards_open(path, &sh) != 0) return cc_command_error(&cmd_index_info, cc_last_error());
    printf("file:        %s (shard manifest; %d shards loaded and checked in %.3f s)\n", path, sh.m.n_shards,
           cc_now() - t0);
    printf("type:        %s\n", sh.m.type);
    printf("dimension:   %d\n", sh.m.dim);
    printf("metric:      %s\n", cc_metric_name(sh.m.metric));
    printf("model:       %s\n", sh.m.model[0] ? sh.m.model : "-");
    printf("vectors:     %lld\n", (long long)cc_shards_count(&sh));
    int64_t bytes = 0;
    for (int i = 0; i < sh.m.n_shards; i++) bytes += cc_index_memory_bytes(sh.idx[i]);
    printf("memory:      %.1f MB\n", (double)bytes / 1e6);
    printf("shards:      (id i is in shard i %% %d)\n", sh.m.n_shards);
    for (int i = 0; i < sh.m.n_shards; i++)
        printf("  %d  %s  %lld vectors, %.1f MB\n", i, sh.m.files[i], (long long)sh.m.counts[i],
               (double)cc_index_memory_bytes(sh.idx[i]) / 1e6);
    cc_shards_close(&sh);
    return 0;
}

static int run_info(int argc, char **argv) {
    cc_strlist files = {0};
    cc_option options[] = {{0}};
    int rc = cc_parse_options(&cmd_index_info, options, argc, argv, &files);
    if (rc) {
        cc_strlist_free(&files);
        return rc > 0 ? 0 : 2;
    }
    if (files.count != 1) {
        fprintf(stderr, "clipc index info: expected one index file\n");
        cc_strlist_free(&files);
        return 2;
    }
    const char *path = files.items[0];
    if (cc_manifest_is_manifest(path)) {
        rc = info_shards(path);
        cc_strlist_free(&files);
        return rc;
    }
    double t0 = cc_now();
    cc_index *idx = cc_index_load(path);
    if (!idx) {
        cc_strlist_free(&files);
        return cc_command_error(&cmd_index_info, cc_last_error());
    }
    printf("file:        %s (loaded and checked in %.3f s)\n", path, cc_now() - t0);
    printf("type:        %s\n", cc_index_desc(idx));
    printf("dimension:   %d\n", cc_index_dim(idx));
    printf("metric:      %s\n", cc_metric_name(cc_index_metric(idx)));
    printf("vectors:     %lld\n", (long long)cc_index_count(idx));
    printf("trained:     %s\n", cc_index_is_trained(idx) ? "yes" : "no");
    int64_t n = cc_index_count(idx);
    printf("memory:      %.1f MB (%.1f bytes/vector)\n", (double)cc_index_memory_bytes(idx) / 1e6,
           n ? (double)cc_index_memory_bytes(idx) / (double)n : 0.0);
    static const char *params[] = {"nlist", "M", "nbits", "nprobe", "rerank", "efConstruction", "efSearch", "seed"};
    printf("parameters: ");
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        int64_t v = cc_index_get_param(idx, params[i]);
        if (v >= 0) printf(" %s=%lld", params[i], (long long)v);
    }
    printf("\nitem texts:  %s\n", cc_index_has_item_texts(idx) ? "yes" : "no");
    int n_meta = cc_index_meta_count(idx);
    if (n_meta) printf("metadata:\n");
    for (int i = 0; i < n_meta; i++) {
        const char *key, *value;
        cc_index_meta_at(idx, i, &key, &value);
        printf("  %s = %s\n", key, value);
    }
    cc_index_free(idx);
    cc_strlist_free(&files);
    return 0;
}
