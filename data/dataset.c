/* dataset.c — reading image-caption pairs (COCO, Karpathy, TSV/CSV), shuffling and splitting them.
 * The threaded batch loader is in loader.c. See dataset.h. */
#include "data/dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/json_reader.h"
#include "data/tokenizer_internal.h"
#include "data/webdataset.h"
#include "engine/util.h"

#define STRING_BLOCK (1 << 20) /* bytes per block of the dataset's string storage */
#define MAX_FIELD (1 << 20)    /* longest TSV/CSV field or caption accepted (bytes) */

struct cc_string_block {
    cc_string_block *next;
    size_t used, cap;
    char data[];
};

static const char *store_string(cc_dataset *ds, const char *s, size_t len) {
    cc_string_block *block = ds->strings;
    if (!block || block->cap - block->used < len + 1) {
        size_t cap = len + 1 > STRING_BLOCK ? len + 1 : STRING_BLOCK;
        cc_string_block *fresh = cc_malloc(sizeof *fresh + cap, "dataset strings");
        if (!fresh) return NULL;
        fresh->next = block;
        fresh->used = 0;
        fresh->cap = cap;
        ds->strings = block = fresh;
    }
    char *out = block->data + block->used;
    memcpy(out, s, len);
    out[len] = 0;
    block->used += len + 1;
    return out;
}

void cc_dataset_free(cc_dataset *ds) {
    if (!ds) return;
    for (cc_string_block *b = ds->strings, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    if (ds->image_map) {
        cc_strmap_free(ds->image_map);
        free(ds->image_map);
    }
    free(ds->pairs);
    free(ds->root);
    memset(ds, 0, sizeof *ds);
}

static int dataset_init(cc_dataset *ds, const char *root) {
    memset(ds, 0, sizeof *ds);
    ds->root = cc_strdup(root ? root : "");
    ds->image_map = cc_malloc(sizeof(cc_strmap), "image map");
    if (!ds->root || !ds->image_map || cc_strmap_init(ds->image_map, 1024) != 0) {
        free(ds->image_map);
        ds->image_map = NULL;
        cc_dataset_free(ds);
        return -1;
    }
    return 0;
}

/* Copies a caption, repairing invalid UTF-8 (U+FFFD per maximal invalid subsequence) and counting. */
static const char *store_caption(cc_dataset *ds, const char *caption, size_t len) {
    int ascii = 1;
    for (size_t i = 0; i < len && ascii; i++) ascii = (unsigned char)caption[i] < 0x80;
    if (ascii) return store_string(ds, caption, len);
    char *utf8 = cc_malloc(3 * len + 1, "caption");
    if (!utf8) return NULL;
    const char *stored = store_string(ds, utf8, cc_utf8_repair(caption, len, utf8, &ds->n_invalid_utf8));
    free(utf8);
    return stored;
}

/* Adds a pair. The image path is kept once, as the key of the image map (which also gives the image
 * index); the caption is copied (and repaired) unless caption_stored says it already lives, repaired,
 * in the dataset's storage. */
static int add_pair(cc_dataset *ds, const char *image, size_t image_len, const char *caption, size_t caption_len,
                    int caption_stored) {
    if (ds->n_pairs == ds->cap_pairs) {
        int64_t cap = ds->cap_pairs ? ds->cap_pairs * 2 : 1024;
        cc_pair *grown = cc_realloc(ds->pairs, (size_t)cap * sizeof(cc_pair), "dataset pairs");
        if (!grown) return -1;
        ds->pairs = grown;
        ds->cap_pairs = cap;
    }
    cc_strmap *map = ds->image_map;
    int32_t *known = cc_strmap_get(map, image, image_len);
    int64_t index;
    if (known) {
        index = *known;
    } else {
        if (ds->n_images >= INT32_MAX) {
            cc_set_error("dataset: too many distinct images");
            return -1;
        }
        index = ds->n_images++;
        if (cc_strmap_put(map, image, image_len, (int32_t)index) != 0) return -1;
    }
    const char *stored_image = cc_strmap_key(map, image, image_len);
    const char *stored_caption = caption_stored ? caption : store_caption(ds, caption, caption_len);
    if (!stored_image || !stored_caption) return -1;
    ds->pairs[ds->n_pairs++] = (cc_pair){stored_image, stored_caption, index};
    return 0;
}

int cc_dataset_add(cc_dataset *ds, const char *image, const char *caption) {
    if (!ds->image_map && dataset_init(ds, "") != 0) return -1;
    return add_pair(ds, image, strlen(image), caption, strlen(caption), 0);
}

const char *cc_dataset_image_path(const cc_dataset *ds, int64_t i, char *buf, size_t size) {
    const char *image = ds->pairs[i].image;
    if (image[0] == '/' || !ds->root || !ds->root[0]) snprintf(buf, size, "%s", image);
    else snprintf(buf, size, "%s/%s", ds->root, image);
    return buf;
}

/* ---------------------------------------------------------------------------------------------- */
/* JSON: COCO captions and Karpathy splits                                                        */
/* ---------------------------------------------------------------------------------------------- */

typedef struct coco_image {
    int64_t id;
    const char *file_name; /* in the dataset's string storage */
} coco_image;

typedef struct coco_annotation {
    int64_t image_id;
    const char *caption;
    int64_t index; /* position in the annotations array, for errors */
} coco_annotation;

static int cmp_coco_image(const void *a, const void *b) {
    int64_t x = ((const coco_image *)a)->id, y = ((const coco_image *)b)->id;
    return x < y ? -1 : x > y;
}

/* Whether split (one word) is in the comma-separated list (NULL list = everything). */
static int split_wanted(const char *list, const char *split) {
    if (!list || !list[0]) return 1;
    size_t n = strlen(split);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, split, n) == 0) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

typedef struct json_state {
    json_reader r;
    cc_dataset *ds;
    const cc_dataset_options *options;
    coco_image *images;
    int64_t n_images, cap_images;
    coco_annotation *annotations;
    int64_t n_annotations, cap_annotations;
    int saw_annotations, saw_sentences;
    int64_t karpathy_kept;
} json_state;

static int grow(void **array, int64_t *cap, int64_t count, size_t elem) {
    if (count < *cap) return 0;
    int64_t new_cap = *cap ? *cap * 2 : 1024;
    void *grown = cc_realloc(*array, (size_t)new_cap * elem, "dataset");
    if (!grown) return -1;
    *array = grown;
    *cap = new_cap;
    return 0;
}

/* Reads a string value into the dataset's storage (captions repaired; paths kept as they are). */
static const char *read_stored(json_state *st, int caption) {
    const char *s;
    size_t len;
    if (json_peek(&st->r) != JSON_STRING) {
        json_error(&st->r, caption ? "expected a caption string" : "expected a string");
        return NULL;
    }
    int64_t before = st->r.invalid_utf8;
    if (json_string(&st->r, &s, &len) != 0) return NULL;
    if (caption) st->ds->n_invalid_utf8 += st->r.invalid_utf8 - before;
    return store_string(st->ds, s, len);
}

/* One element of "images": COCO ({id, file_name}) or Karpathy ({filepath, filename, split, sentences}). */
static int read_image_entry(json_state *st) {
    json_reader *r = &st->r;
    if (json_object_begin(r) != 0) return -1;
    coco_image image = {-1, NULL};
    int have_id = 0;
    const char *filepath = NULL, *filename = NULL, *split = NULL;
    const char **sentences = NULL;
    int64_t n_sentences = 0, cap_sentences = 0;
    const char *key;
    int rc, failed = 0;
    while (!failed && (rc = json_object_next(r, &key)) == 1) {
        if (strcmp(key, "id") == 0) {
            failed = json_int64(r, &image.id) != 0;
            have_id = 1;
        } else if (strcmp(key, "file_name") == 0) {
            failed = !(image.file_name = read_stored(st, 0));
        } else if (strcmp(key, "filepath") == 0) {
            failed = !(filepath = read_stored(st, 0));
        } else if (strcmp(key, "filename") == 0) {
            failed = !(filename = read_stored(st, 0));
        } else if (strcmp(key, "split") == 0) {
            failed = !(split = read_stored(st, 0));
        } else if (strcmp(key, "sentences") == 0) {
            st->saw_sentences = 1;
            if (json_array_begin(r) != 0) {
                failed = 1;
                break;
            }
            int more;
            while (!failed && (more = json_array_next(r)) == 1) {
                if (json_object_begin(r) != 0) {
                    failed = 1;
                    break;
                }
                const char *sentence_key;
                int has;
                while (!failed && (has = json_object_next(r, &sentence_key)) == 1) {
                    if (strcmp(sentence_key, "raw") == 0) {
                        const char *raw = read_stored(st, 1);
                        if (!raw || grow((void **)&sentences, &cap_sentences, n_sentences, sizeof *sentences) != 0) failed = 1;
                        else sentences[n_sentences++] = raw;
                    } else {
                        failed = json_skip(r) != 0;
                    }
                }
                if (has < 0) failed = 1;
            }
            if (more < 0) failed = 1;
        } else {
            failed = json_skip(r) != 0;
        }
    }
    if (!failed && rc < 0) failed = 1;
    if (!failed && st->saw_sentences && n_sentences > 0) { /* Karpathy */
        if (!filename) {
            failed = 1;
            json_error(r, "a Karpathy image entry has sentences but no \"filename\"");
        } else if (split_wanted(st->options->split, split ? split : "")) {
            char path[8192];
            int len = snprintf(path, sizeof path, "%s%s%s", filepath ? filepath : "", filepath && filepath[0] ? "/" : "", filename);
            if (len < 0 || (size_t)len >= sizeof path) {
                char what[128];
                snprintf(what, sizeof what, "a Karpathy image path (filepath/filename) is longer than %zu bytes",
                         sizeof path - 1);
                failed = 1;
                json_error(r, what);
            }
            for (int64_t k = 0; k < n_sentences && !failed; k++)
                failed = add_pair(st->ds, path, (size_t)len, sentences[k], strlen(sentences[k]), 1) != 0;
            st->karpathy_kept++;
        }
    } else if (!failed && (have_id || image.file_name)) { /* COCO */
        if (!have_id || !image.file_name) {
            failed = 1;
            json_error(r, "a COCO image entry needs both \"id\" and \"file_name\"");
        } else if (grow((void **)&st->images, &st->cap_images, st->n_images, sizeof(coco_image)) != 0) {
            failed = 1;
        } else {
            st->images[st->n_images++] = image;
        }
    }
    free(sentences);
    return failed ? -1 : 0;
}

static int read_annotation(json_state *st) {
    json_reader *r = &st->r;
    if (json_object_begin(r) != 0) return -1;
    coco_annotation a = {0, NULL, st->n_annotations};
    int have_image = 0, rc;
    const char *key;
    while ((rc = json_object_next(r, &key)) == 1) {
        if (strcmp(key, "image_id") == 0) {
            if (json_int64(r, &a.image_id) != 0) return -1;
            have_image = 1;
        } else if (strcmp(key, "caption") == 0) {
            if (!(a.caption = read_stored(st, 1))) return -1;
        } else if (json_skip(r) != 0) {
            return -1;
        }
    }
    if (rc < 0) return -1;
    if (!have_image || !a.caption) return json_error(r, "an annotation needs \"image_id\" and \"caption\"");
    if (grow((void **)&st->annotations, &st->cap_annotations, st->n_annotations, sizeof a) != 0) return -1;
    st->annotations[st->n_annotations++] = a;
    return 0;
}

static int read_array_of(json_state *st, int (*element)(json_state *)) {
    if (json_array_begin(&st->r) != 0) return -1;
    int more;
    while ((more = json_array_next(&st->r)) == 1)
        if (element(st) != 0) return -1;
    return more < 0 ? -1 : 0;
}

static int read_json_dataset(const char *path, const char *text, size_t size, const cc_dataset_options *options,
                             cc_dataset *ds) {
    json_state st;
    memset(&st, 0, sizeof st);
    json_init(&st.r, text, size, path);
    st.ds = ds;
    st.options = options;
    int rc = -1;
    const char *key;
    int more;
    if (json_object_begin(&st.r) != 0) goto done;
    while ((more = json_object_next(&st.r, &key)) == 1) {
        if (strcmp(key, "images") == 0) {
            if (read_array_of(&st, read_image_entry) != 0) goto done;
        } else if (strcmp(key, "annotations") == 0) {
            st.saw_annotations = 1;
            if (read_array_of(&st, read_annotation) != 0) goto done;
        } else if (json_skip(&st.r) != 0) {
            goto done;
        }
    }
    if (more < 0 || json_end(&st.r) != 0) goto done;
    int coco = st.saw_annotations;
    if (options->format == CC_DATASET_COCO && !coco) {
        cc_set_error("%s: not a COCO captions file (no \"annotations\")", path);
        goto done;
    }
    if (options->format == CC_DATASET_KARPATHY && (coco || !st.saw_sentences)) {
        cc_set_error("%s: not a Karpathy split file (images without \"sentences\")", path);
        goto done;
    }
    if (!coco && !st.saw_sentences) {
        cc_set_error("%s: neither COCO captions (\"annotations\") nor a Karpathy split (\"sentences\")", path);
        goto done;
    }
    if (coco) {
        /* resolve image ids: sort the images by id, binary-search each annotation's */
        if (st.n_images > 1) qsort(st.images, (size_t)st.n_images, sizeof(coco_image), cmp_coco_image);
        for (int64_t i = 1; i < st.n_images; i++)
            if (st.images[i].id == st.images[i - 1].id) {
                cc_set_error("%s: image id %lld appears twice in \"images\"", path, (long long)st.images[i].id);
                goto done;
            }
        for (int64_t k = 0; k < st.n_annotations; k++) {
            coco_annotation *a = &st.annotations[k];
            coco_image probe = {a->image_id, NULL};
            coco_image *image =
                st.n_images ? bsearch(&probe, st.images, (size_t)st.n_images, sizeof(coco_image), cmp_coco_image) : NULL;
            if (!image) {
                cc_set_error("%s: annotation %lld refers to image_id %lld, which is not in \"images\"", path,
                             (long long)a->index, (long long)a->image_id);
                goto done;
            }
            if (add_pair(ds, image->file_name, strlen(image->file_name), a->caption, strlen(a->caption), 1) != 0) goto done;
        }
    }
    rc = 0;
done:
    free(st.images);
    free(st.annotations);
    json_free(&st.r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* TSV / CSV                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

typedef struct csv_reader {
    const char *at, *end, *name;
    char sep;
    int line;
    char *field;
    size_t field_len, field_cap;
} csv_reader;

/* Reads one field; *last is set when it ended its row. Returns 0, or -1 (error set). */
static int csv_field(csv_reader *c, int *last) {
    c->field_len = 0;
    int start_line = c->line;
    int quoted = c->at < c->end && *c->at == '"';
    if (quoted) c->at++;
    for (;;) {
        if (c->at >= c->end) {
            if (quoted) {
                cc_set_error("%s:%d: unterminated quoted field (the quote opened on line %d)", c->name, c->line, start_line);
                return -1;
            }
            *last = 1;
            break;
        }
        char ch = *c->at;
        if (quoted && ch == '"') {
            if (c->at + 1 < c->end && c->at[1] == '"') {
                c->at += 2;
                ch = '"';
            } else {
                c->at++;
                quoted = 0;
                if (c->at < c->end && *c->at != c->sep && *c->at != '\n' && *c->at != '\r') {
                    cc_set_error("%s:%d: unexpected character after a closing quote", c->name, c->line);
                    return -1;
                }
                continue;
            }
        } else if (!quoted && ch == c->sep) {
            c->at++;
            *last = 0;
            break;
        } else if (!quoted && (ch == '\n' || ch == '\r')) {
            if (ch == '\r' && c->at + 1 < c->end && c->at[1] == '\n') c->at++;
            c->at++;
            c->line++;
            *last = 1;
            break;
        } else {
            if (ch == '\n') c->line++;
            c->at++;
        }
        if (c->field_len + 2 > c->field_cap) {
            if (c->field_cap >= MAX_FIELD) {
                cc_set_error("%s:%d: field longer than %d bytes", c->name, c->line, MAX_FIELD);
                return -1;
            }
            size_t cap = c->field_cap ? c->field_cap * 2 : 256;
            char *grown = cc_realloc(c->field, cap, "field");
            if (!grown) return -1;
            c->field = grown;
            c->field_cap = cap;
        }
        c->field[c->field_len++] = ch;
    }
    if (c->field_cap == 0) {
        c->field = cc_malloc(256, "field");
        if (!c->field) return -1;
        c->field_cap = 256;
    }
    c->field[c->field_len] = 0;
    return 0;
}

static int read_csv_dataset(const char *path, const char *text, size_t size, const cc_dataset_options *options,
                            cc_dataset *ds) {
    size_t path_len = strlen(path);
    char sep = options->separator ? options->separator
               : (path_len >= 4 && strcmp(path + path_len - 4, ".csv") == 0) ? ',' : '\t';
    csv_reader c = {text, text + size, path, sep, 1, NULL, 0, 0};
    if (size >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) c.at += 3; /* a UTF-8 byte order mark */
    char **header = NULL;
    int n_columns = 0, rc = -1, last = 0;
    while (!last) {
        if (csv_field(&c, &last) != 0) goto done;
        char **grown = cc_realloc(header, (size_t)(n_columns + 1) * sizeof(char *), "header");
        if (!grown) goto done;
        header = grown;
        if (!(header[n_columns++] = cc_strdup(c.field))) goto done;
    }
    int img_col = -1, cap_col = -1;
    const char *img_key = options->img_key, *cap_key = options->caption_key;
    static const char *const defaults[][2] = {{"image", "caption"}, {"filepath", "title"}};
    for (int d = 0; d < 2 && (img_col < 0 || cap_col < 0); d++) {
        const char *ik = img_key ? img_key : defaults[d][0], *ck = cap_key ? cap_key : defaults[d][1];
        img_col = cap_col = -1;
        for (int i = 0; i < n_columns; i++) {
            if (strcmp(header[i], ik) == 0) img_col = i;
            if (strcmp(header[i], ck) == 0) cap_col = i;
        }
    }
    if (img_col < 0 || cap_col < 0) {
        /* report against the first naming (the options' or image/caption), not the fallback's */
        img_col = cap_col = -1;
        for (int i = 0; i < n_columns; i++) {
            if (strcmp(header[i], img_key ? img_key : defaults[0][0]) == 0) img_col = i;
            if (strcmp(header[i], cap_key ? cap_key : defaults[0][1]) == 0) cap_col = i;
        }
        char columns[512] = "";
        for (int i = 0; i < n_columns; i++)
            snprintf(columns + strlen(columns), sizeof columns - strlen(columns), "%s'%s'", i ? ", " : "", header[i]);
        cc_set_error("%s:1: the header has no %s column '%s' (columns: %s)", path, img_col < 0 ? "image" : "caption",
                     img_col < 0 ? (img_key ? img_key : "image") : (cap_key ? cap_key : "caption"), columns);
        goto done;
    }
    char *image = NULL;
    size_t image_cap = 0;
    while (c.at < c.end) {
        int row_line = c.line, column = 0;
        size_t image_len = 0;
        int have_image = 0, have_caption = 0;
        char *caption = NULL;
        size_t caption_len = 0;
        /* a blank line is skipped */
        if (*c.at == '\n' || (*c.at == '\r' && c.at + 1 < c.end && c.at[1] == '\n')) {
            c.at += *c.at == '\r' ? 2 : 1;
            c.line++;
            continue;
        }
        last = 0;
        while (!last) {
            if (csv_field(&c, &last) != 0) {
                free(caption);
                free(image);
                goto done;
            }
            if (column == img_col) {
                if (c.field_len + 1 > image_cap) {
                    image_cap = c.field_len + 1;
                    char *grown = cc_realloc(image, image_cap, "field");
                    if (!grown) {
                        free(caption);
                        free(image);
                        goto done;
                    }
                    image = grown;
                }
                memcpy(image, c.field, c.field_len + 1);
                image_len = c.field_len;
                have_image = 1;
            }
            if (column == cap_col) {
                caption = cc_malloc(c.field_len + 1, "caption");
                if (!caption) {
                    free(image);
                    goto done;
                }
                memcpy(caption, c.field, c.field_len + 1);
                caption_len = c.field_len;
                have_caption = 1;
            }
            column++;
        }
        if (!have_image || !have_caption) {
            cc_set_error("%s:%d: row has %d field%s, the header %d", path, row_line, column, column == 1 ? "" : "s", n_columns);
            free(caption);
            free(image);
            goto done;
        }
        if (image_len == 0) {
            cc_set_error("%s:%d: empty image path", path, row_line);
            free(caption);
            free(image);
            goto done;
        }
        int added = add_pair(ds, image, image_len, caption, caption_len, 0);
        free(caption);
        if (added != 0) {
            free(image);
            goto done;
        }
    }
    free(image);
    rc = 0;
done:
    for (int i = 0; i < n_columns; i++) free(header[i]);
    free(header);
    free(c.field);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Entry points                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

int cc_dataset_read(const char *path, const cc_dataset_options *options, cc_dataset *out) {
    cc_dataset_options defaults;
    if (!options) {
        memset(&defaults, 0, sizeof defaults);
        options = &defaults;
    }
    if (cc_shard_spec_is(path)) return cc_dataset_read_shards(path, out);
    char root[4096];
    if (options->image_root) {
        snprintf(root, sizeof root, "%s", options->image_root);
    } else {
        const char *slash = strrchr(path, '/');
        snprintf(root, sizeof root, "%.*s", slash ? (int)(slash - path) : 0, path);
    }
    if (dataset_init(out, root) != 0) return -1;
    char *text;
    size_t size;
    if (cc_read_file(path, &text, &size) != 0) {
        cc_dataset_free(out);
        return -1;
    }
    size_t len = strlen(path);
    int json = options->format == CC_DATASET_COCO || options->format == CC_DATASET_KARPATHY ||
               (options->format == CC_DATASET_AUTO && len >= 5 && strcmp(path + len - 5, ".json") == 0);
    int rc = json ? read_json_dataset(path, text, size, options, out) : read_csv_dataset(path, text, size, options, out);
    free(text);
    if (rc == 0 && out->n_pairs == 0) {
        cc_set_error("%s: no image-caption pairs%s", path, options->split ? " in the requested split" : "");
        rc = -1;
    }
    if (rc != 0) cc_dataset_free(out);
    return rc;
}

void cc_dataset_shuffle(cc_dataset *ds, uint64_t seed) {
    cc_rng rng;
    cc_rng_seed(&rng, seed);
    for (int64_t i = ds->n_pairs - 1; i > 0; i--) {
        int64_t j = (int64_t)cc_rng_below(&rng, (uint64_t)i + 1);
        cc_pair tmp = ds->pairs[i];
        ds->pairs[i] = ds->pairs[j];
        ds->pairs[j] = tmp;
    }
}

int cc_dataset_split(const cc_dataset *ds, double val_fraction, uint64_t seed, cc_dataset *train, cc_dataset *val) {
    if (!(val_fraction >= 0 && val_fraction < 1)) {
        cc_set_error("dataset split: the validation fraction must be in [0, 1), got %g", val_fraction);
        return -1;
    }
    int64_t n = ds->n_images;
    int64_t n_val = (int64_t)(val_fraction * (double)n + 0.5);
    if (val_fraction > 0 && n_val == 0 && n >= 2) n_val = 1;
    if (n_val >= n && n > 0) n_val = n - 1;
    int64_t *order = cc_malloc((size_t)(n ? n : 1) * sizeof(int64_t), "split");
    uint8_t *in_val = cc_calloc((size_t)(n ? n : 1), 1, "split");
    if (!order || !in_val || dataset_init(train, ds->root) != 0) {
        free(order);
        free(in_val);
        return -1;
    }
    if (dataset_init(val, ds->root) != 0) {
        cc_dataset_free(train);
        free(order);
        free(in_val);
        return -1;
    }
    cc_rng rng;
    cc_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)cc_rng_below(&rng, (uint64_t)i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (int64_t i = 0; i < n_val; i++) in_val[order[i]] = 1;
    int rc = 0;
    for (int64_t i = 0; i < ds->n_pairs && rc == 0; i++) {
        const cc_pair *p = &ds->pairs[i];
        cc_dataset *target = in_val[p->image_index] ? val : train;
        rc = add_pair(target, p->image, strlen(p->image), p->caption, strlen(p->caption), 0);
    }
    free(order);
    free(in_val);
    if (rc != 0) {
        cc_dataset_free(train);
        cc_dataset_free(val);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */

int cc_dataset_init_empty(cc_dataset *ds, const char *root) { return dataset_init(ds, root); }
