/* webdataset.c — WebDataset shards (webdataset.h): shard specs with brace ranges, indexing shards into
 * a cc_dataset of shard references, reading a referenced image, and writing shards. */
#include "data/webdataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/tar.h"
#include "engine/util.h"

#define MAX_CAPTION (1 << 20) /* largest caption member read (bytes) */

/* ---------------------------------------------------------------------------------------------- */
/* Shard specs: "a/{000..099}.tar,b/x-{0..3}.tar"                                                 */
/* ---------------------------------------------------------------------------------------------- */

typedef struct path_list {
    char **items;
    int64_t n, cap;
} path_list;

static int list_push(path_list *l, const char *s, size_t len) {
    if (l->n >= CC_SHARD_MAX_PATHS) {
        cc_set_error("shard spec: expands to more than %d shards", CC_SHARD_MAX_PATHS);
        return -1;
    }
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 16;
        char **grown = cc_realloc(l->items, (size_t)cap * sizeof(char *), "shard list");
        if (!grown) return -1;
        l->items = grown;
        l->cap = cap;
    }
    char *copy = cc_malloc(len + 1, "shard path");
    if (!copy) return -1;
    memcpy(copy, s, len);
    copy[len] = 0;
    l->items[l->n++] = copy;
    return 0;
}

/* The end of the top-level item starting at p (a comma outside braces, or the end). */
static const char *item_end(const char *p) {
    int depth = 0;
    for (; *p; p++) {
        if (*p == '{') depth++;
        else if (*p == '}' && depth > 0) depth--;
        else if (*p == ',' && depth == 0) break;
    }
    return p;
}

int cc_shard_spec_is(const char *spec) {
    if (!spec || !*spec) return 0;
    for (const char *p = spec;;) {
        const char *end = item_end(p);
        if (end - p < 4 || memcmp(end - 4, ".tar", 4) != 0) return 0;
        if (!*end) return 1;
        p = end + 1;
    }
}

/* A decimal number of 1..18 digits. */
static int parse_decimal(const char *s, size_t len, long long *out) {
    if (len == 0 || len > 18) return -1;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int expand(const char *spec, const char *prefix, size_t prefix_len, const char *rest, path_list *out);

/* Expands "{A..B}" or "{x,y}" (body without braces) followed by tail, after prefix. */
static int expand_braces(const char *spec, const char *prefix, size_t prefix_len, const char *body, size_t body_len,
                         const char *tail, path_list *out) {
    char *buf = cc_malloc(prefix_len + body_len + 32, "shard spec");
    if (!buf) return -1;
    memcpy(buf, prefix, prefix_len);
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < body_len; i++)
        if (body[i] == '.' && body[i + 1] == '.') {
            dots = body + i;
            break;
        }
    int rc = 0;
    long long a, b;
    if (dots && !memchr(body, ',', body_len)) {
        size_t la = (size_t)(dots - body), lb = body_len - la - 2;
        if (parse_decimal(body, la, &a) != 0 || parse_decimal(dots + 2, lb, &b) != 0 || b < a) {
            cc_set_error("shard spec '%s': bad range {%.*s} (want {A..B} with decimal A <= B)", spec, (int)body_len, body);
            rc = -1;
        } else if (b - a >= CC_SHARD_MAX_PATHS) {
            cc_set_error("shard spec '%s': range {%.*s} is larger than %d", spec, (int)body_len, body, CC_SHARD_MAX_PATHS);
            rc = -1;
        }
        int pad = (la > 1 && body[0] == '0') || (lb > 1 && dots[2] == '0') ? (int)(la > lb ? la : lb) : 0;
        for (long long v = a; rc == 0 && v <= b; v++) {
            int n = snprintf(buf + prefix_len, 32, "%0*lld", pad, v);
            rc = expand(spec, buf, prefix_len + (size_t)n, tail, out);
        }
    } else {
        for (const char *p = body, *end = body + body_len; rc == 0 && p <= end;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
            memcpy(buf + prefix_len, p, len);
            rc = expand(spec, buf, prefix_len + len, tail, out);
            p += len + 1;
        }
    }
    free(buf);
    return rc;
}

/* Appends prefix + every expansion of rest (a pattern without top-level commas). */
static int expand(const char *spec, const char *prefix, size_t prefix_len, const char *rest, path_list *out) {
    const char *open = strchr(rest, '{');
    if (!open) {
        size_t len = strlen(rest);
        char *whole = cc_malloc(prefix_len + len + 1, "shard path");
        if (!whole) return -1;
        memcpy(whole, prefix, prefix_len);
        memcpy(whole + prefix_len, rest, len + 1);
        int rc = list_push(out, whole, prefix_len + len);
        free(whole);
        return rc;
    }
    const char *close = strchr(open, '}');
    if (!close || memchr(open + 1, '{', (size_t)(close - open - 1))) {
        cc_set_error("shard spec '%s': unbalanced or nested braces", spec);
        return -1;
    }
    size_t lit = (size_t)(open - rest);
    char *head = cc_malloc(prefix_len + lit + 1, "shard spec");
    if (!head) return -1;
    memcpy(head, prefix, prefix_len);
    memcpy(head + prefix_len, rest, lit);
    int rc = expand_braces(spec, head, prefix_len + lit, open + 1, (size_t)(close - open - 1), close + 1, out);
    free(head);
    return rc;
}

void cc_shard_paths_free(char **paths, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

int cc_shard_spec_expand(const char *spec, char ***paths, int64_t *n) {
    path_list out = {0};
    int rc = 0;
    for (const char *p = spec; rc == 0;) {
        const char *end = item_end(p);
        char *item = cc_malloc((size_t)(end - p) + 1, "shard spec");
        if (!item) rc = -1;
        else {
            memcpy(item, p, (size_t)(end - p));
            item[end - p] = 0;
            if (!item[0]) {
                cc_set_error("shard spec '%s': an empty item", spec);
                rc = -1;
            } else {
                rc = expand(spec, "", 0, item, &out);
            }
            free(item);
        }
        if (!*end) break;
        p = end + 1;
    }
    if (rc != 0) {
        cc_shard_paths_free(out.items, out.n);
        return -1;
    }
    *paths = out.items;
    *n = out.n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Shard references: "SHARD@OFFSET+SIZE/MEMBER"                                                   */
/* ---------------------------------------------------------------------------------------------- */

/* Digits at p: the value and the count of digits (0 when none or too many). */
static size_t read_u64(const char *p, uint64_t *out) {
    size_t n = 0;
    uint64_t v = 0;
    for (; p[n] >= '0' && p[n] <= '9'; n++) {
        if (n >= 19) return 0;
        v = v * 10 + (uint64_t)(p[n] - '0');
    }
    *out = v;
    return n;
}

int cc_shard_ref_parse(const char *ref, char *shard, size_t shard_size, uint64_t *offset, uint64_t *size,
                       const char **member) {
    for (const char *at = strstr(ref, ".tar@"); at; at = strstr(at + 1, ".tar@")) {
        const char *p = at + 5;
        size_t n = read_u64(p, offset);
        if (!n || p[n] != '+') continue;
        p += n + 1;
        n = read_u64(p, size);
        if (!n || p[n] != '/') continue;
        size_t len = (size_t)(at + 4 - ref);
        if (len >= shard_size) continue;
        memcpy(shard, ref, len);
        shard[len] = 0;
        *member = p + n + 1;
        return 1;
    }
    return 0;
}

int cc_dataset_image_bytes(const char *path, char **data, size_t *size) {
    char shard[PATH_MAX];
    uint64_t offset, length;
    const char *member;
    if (!cc_shard_ref_parse(path, shard, sizeof shard, &offset, &length, &member)) return cc_read_file(path, data, size);
    if (length > CC_READ_FILE_MAX) {
        cc_set_error("%s: member of %llu bytes, more than %lld", path, (unsigned long long)length, (long long)CC_READ_FILE_MAX);
        return -1;
    }
    int fd = open(shard, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cc_set_error("%s: cannot open the shard: %s", path, strerror(errno));
        return -1;
    }
    char *buf = cc_malloc(length ? (size_t)length : 1, "shard member");
    int rc = buf ? cc_tar_read_fd(&fd, offset, buf, (size_t)length) : -1;
    close(fd);
    if (rc != 0) {
        if (buf) cc_set_error("%s: the shard ends before the member's %llu bytes (was it changed?)", path,
                              (unsigned long long)length);
        free(buf);
        return -1;
    }
    *data = buf;
    *size = (size_t)length;
    return 0;
}

int cc_dataset_preprocess_image(const cc_preprocess_config *cfg, const char *path, float *out) {
    char *data;
    size_t n;
    if (cc_dataset_image_bytes(path, &data, &n) != 0) return -1;
    int rc = cc_preprocess_memory(cfg, data, n, path, out);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reading shards                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

typedef enum {
    SKIP_NO_IMAGE = 0,
    SKIP_NO_CAPTION,
    SKIP_BAD_JSON,
    SKIP_BIG_CAPTION,
    SKIP_LONG_NAME,
    N_SKIP
} skip_reason;

static const char *const skip_text[N_SKIP] = {
    "no image member (.jpg, .jpeg, .png or .webp)",
    "no caption member (.txt, or .json with a string \"caption\" or \"text\")",
    "the .json caption is not a JSON object with a string \"caption\" or \"text\"",
    "caption member larger than 1 MiB",
    "member name longer than 4096 bytes (skipped with its member)",
};

/* The sample being collected: consecutive members sharing a key. */
typedef struct sample {
    char key[CC_TAR_MAX_NAME + 1];
    int have;                       /* any member yet */
    cc_tar_member image;
    int have_image;
    char *caption;                  /* from .txt (preferred) or .json */
    int caption_from_txt, bad_json, big_caption;
} sample;

typedef struct shard_reader {
    const char *path;               /* as the user named it */
    char abs[PATH_MAX];             /* its absolute path, for references */
    int fd;
    cc_tar_reader tar;
    cc_dataset *ds;
    sample cur;
    int64_t skipped[N_SKIP];
    int64_t n_added;
} shard_reader;

/* Splits a member name into key (all up to the first dot of the last component) and extension. */
static const char *split_key(const char *name, size_t *key_len) {
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strchr(base, '.');
    if (!dot || dot == base) return NULL;
    *key_len = (size_t)(dot - name);
    return dot + 1;
}

static int ext_is(const char *ext, const char *want) { return strcasecmp(ext, want) == 0; }

static int is_image_ext(const char *ext) {
    return ext_is(ext, "jpg") || ext_is(ext, "jpeg") || ext_is(ext, "png") || ext_is(ext, "webp");
}

/* Reads a caption member's body (NUL-terminated); NULL with *too_big set when over MAX_CAPTION. */
static char *read_body(shard_reader *s, const cc_tar_member *m, int *too_big) {
    *too_big = m->size > MAX_CAPTION;
    if (*too_big) return NULL;
    char *text = cc_malloc((size_t)m->size + 1, "caption");
    if (!text) return NULL;
    if (cc_tar_read_fd(&s->fd, m->offset, text, (size_t)m->size) != 0) {
        cc_set_error("%s: cannot read member %s", s->path, m->name);
        free(text);
        return NULL;
    }
    text[m->size] = 0;
    return text;
}

/* The caption of a .json member: its string "caption", else "text"; NULL when neither. */
static char *json_caption(const char *text) {
    cJSON *root = cJSON_Parse(text);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "caption");
    if (!cJSON_IsString(c)) c = cJSON_GetObjectItemCaseSensitive(root, "text");
    char *out = cJSON_IsString(c) ? cc_strdup(c->valuestring) : NULL;
    cJSON_Delete(root);
    return out;
}

static void strip_trailing_space(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
}

/* Ends the current sample: adds it as a pair, or counts why not. */
static int finish_sample(shard_reader *s) {
    sample *c = &s->cur;
    int rc = 0;
    if (c->have) {
        if (!c->have_image) s->skipped[SKIP_NO_IMAGE]++;
        else if (!c->caption && c->big_caption) s->skipped[SKIP_BIG_CAPTION]++;
        else if (!c->caption && c->bad_json) s->skipped[SKIP_BAD_JSON]++;
        else if (!c->caption) s->skipped[SKIP_NO_CAPTION]++;
        else {
            char *ref = cc_malloc(strlen(s->abs) + strlen(c->image.name) + 48, "shard reference");
            if (!ref) rc = -1;
            else {
                sprintf(ref, "%s@%llu+%llu/%s", s->abs, (unsigned long long)c->image.offset,
                        (unsigned long long)c->image.size, c->image.name);
                strip_trailing_space(c->caption);
                rc = cc_dataset_add(s->ds, ref, c->caption);
                free(ref);
                s->n_added += rc == 0;
            }
        }
    }
    free(c->caption);
    memset(c, 0, sizeof *c);
    return rc;
}

/* Adds one member to the current sample (starting a new one when the key changes). */
static int add_member(shard_reader *s, const cc_tar_member *m) {
    size_t key_len;
    const char *ext = split_key(m->name, &key_len);
    if (!ext) return 0; /* no extension: not part of any sample (WebDataset ignores these too) */
    sample *c = &s->cur;
    if (c->have && (strlen(c->key) != key_len || memcmp(c->key, m->name, key_len) != 0) && finish_sample(s) != 0)
        return -1;
    if (!c->have) {
        memcpy(c->key, m->name, key_len);
        c->key[key_len] = 0;
        c->have = 1;
    }
    int too_big = 0;
    if (is_image_ext(ext) && !c->have_image) {
        c->image = *m;
        c->have_image = 1;
    } else if (ext_is(ext, "txt") && !c->caption_from_txt) {
        char *text = read_body(s, m, &too_big);
        if (!text && !too_big) return -1;
        c->big_caption |= too_big;
        if (text) {
            free(c->caption);
            c->caption = text;
            c->caption_from_txt = 1;
        }
    } else if (ext_is(ext, "json") && !c->caption) {
        char *text = read_body(s, m, &too_big);
        if (!text && !too_big) return -1;
        c->big_caption |= too_big;
        if (text) {
            c->caption = json_caption(text);
            c->bad_json = !c->caption;
            free(text);
        }
    }
    return 0;
}

static void report_skips(shard_reader *s) {
    s->skipped[SKIP_LONG_NAME] += s->tar.n_long_names_skipped;
    for (int k = 0; k < N_SKIP; k++) {
        if (!s->skipped[k]) continue;
        s->ds->n_skipped_samples += s->skipped[k];
        fprintf(stderr, "warning: %lld sample%s skipped in %s: %s\n", (long long)s->skipped[k],
                s->skipped[k] == 1 ? "" : "s", s->path, skip_text[k]);
    }
}

/* Indexes one shard into ds. A bad header at the start is an error (not a tar file); later, it ends
 * the shard with a warning, keeping the samples before it. */
static int read_shard(const char *path, cc_dataset *ds) {
    shard_reader *s = cc_calloc(1, sizeof *s, "shard reader");
    if (!s) return -1;
    s->path = path;
    s->ds = ds;
    s->fd = -1;
    int rc = -1;
    struct stat st;
    if (!realpath(path, s->abs)) {
        cc_set_error("%s: cannot open the shard: %s", path, strerror(errno));
        goto done;
    }
    if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cc_set_error("%s: cannot open the shard%s%s", path, s->fd >= 0 ? " (not a regular file)" : ": ",
                     s->fd >= 0 ? "" : strerror(errno));
        goto done;
    }
    cc_tar_reader_init(&s->tar, path, (uint64_t)st.st_size, cc_tar_read_fd, &s->fd);
    cc_tar_member *m = cc_malloc(sizeof *m, "tar member");
    if (!m) goto done;
    int got, n_members = 0;
    while ((got = cc_tar_next(&s->tar, m)) == 1) {
        n_members++;
        if (add_member(s, m) != 0) break;
    }
    free(m);
    if (got == 1) goto done; /* a read or memory error */
    if (got < 0 && n_members == 0 && s->tar.pos == 0) goto done;
    if (got < 0) fprintf(stderr, "warning: %s; the rest of the shard is skipped\n", cc_last_error());
    if (finish_sample(s) != 0) goto done;
    report_skips(s);
    rc = 0;
done:
    free(s->cur.caption);
    if (s->fd >= 0) close(s->fd);
    free(s);
    return rc;
}

int cc_dataset_read_shards(const char *spec, cc_dataset *out) {
    char **paths;
    int64_t n;
    if (cc_shard_spec_expand(spec, &paths, &n) != 0) return -1;
    int rc = cc_dataset_init_empty(out, "");
    for (int64_t i = 0; i < n && rc == 0; i++) rc = read_shard(paths[i], out);
    if (rc == 0 && out->n_pairs == 0) {
        cc_set_error("%s: no image-caption samples in the %lld shard%s", spec, (long long)n, n == 1 ? "" : "s");
        rc = -1;
    }
    if (rc != 0 && out->image_map) cc_dataset_free(out);
    cc_shard_paths_free(paths, n);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing shards                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* The lower-case image extension of a path or shard reference, or NULL when not a shard image type. */
static const char *image_ext(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (!dot || strlen(dot + 1) >= size) return NULL;
    size_t i = 0;
    for (const char *p = dot + 1; *p; p++) buf[i++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    buf[i] = 0;
    return is_image_ext(buf) ? buf : NULL;
}

static int write_sample(FILE *fp, const cc_dataset *ds, int64_t i) {
    char path[PATH_MAX + 64], ext[8], name[64];
    cc_dataset_image_path(ds, i, path, sizeof path);
    if (!image_ext(path, ext, sizeof ext)) {
        cc_set_error("%s: shards hold .jpg, .jpeg, .png or .webp images", path);
        return -1;
    }
    char *data;
    size_t size;
    if (cc_dataset_image_bytes(path, &data, &size) != 0) return -1;
    snprintf(name, sizeof name, "%09lld.%s", (long long)i, ext);
    int rc = cc_tar_write_member(fp, name, data, size);
    free(data);
    const char *caption = ds->pairs[i].caption;
    snprintf(name, sizeof name, "%09lld.txt", (long long)i);
    return rc == 0 ? cc_tar_write_member(fp, name, caption, strlen(caption)) : -1;
}

int cc_shards_write(const cc_dataset *ds, const char *dir, int64_t per_shard, char *pattern, size_t pattern_size,
                    int64_t *n_shards) {
    if (per_shard <= 0 || ds->n_pairs == 0) {
        cc_set_error("shards: need samples per shard >= 1 and a non-empty dataset");
        return -1;
    }
    int64_t shards = (ds->n_pairs + per_shard - 1) / per_shard;
    if (shards > 99999 || ds->n_pairs > 999999999) {
        cc_set_error("shards: %lld pairs in %lld shards: at most 99999 shards and 999999999 samples", (long long)ds->n_pairs,
                     (long long)shards);
        return -1;
    }
    if (cc_mkdir_p(dir) != 0) return -1;
    char path[PATH_MAX];
    for (int64_t s = 0; s < shards; s++) {
        snprintf(path, sizeof path, "%s/%05lld.tar", dir, (long long)s);
        cc_atomic_file af;
        if (cc_atomic_open(&af, path) != 0) return -1;
        int64_t end = (s + 1) * per_shard < ds->n_pairs ? (s + 1) * per_shard : ds->n_pairs;
        int rc = 0;
        for (int64_t i = s * per_shard; i < end && rc == 0; i++) rc = write_sample(af.fp, ds, i);
        if (rc == 0) rc = cc_tar_write_end(af.fp);
        if (rc != 0) {
            cc_prefix_error("%s", path);
            cc_atomic_abort(&af);
            return -1;
        }
        if (cc_atomic_commit(&af) != 0) return -1;
    }
    snprintf(pattern, pattern_size, "%s/{00000..%05lld}.tar", dir, (long long)(shards - 1));
    *n_shards = shards;
    return 0;
}
