/* manifest.c — the shard manifest (JSON, via data/json_reader): parse with every field checked, atomic
 * save, shard paths, and the merge of per-shard top-k lists. The shards themselves: index/shards.c. */
#include "index/manifest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/json_reader.h"
#include "engine/util.h"

void cc_manifest_free(cc_manifest *m) {
    if (!m) return;
    for (int i = 0; m->files && i < m->n_shards; i++) free(m->files[i]);
    free(m->files);
    free(m->counts);
    free(m->type);
    free(m->model);
    memset(m, 0, sizeof *m);
}

int cc_manifest_is_manifest(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    int c;
    while ((c = fgetc(fp)) == ' ' || c == '\n' || c == '\r' || c == '\t') {}
    fclose(fp);
    return c == '{';
}

static int bad(const char *name, const char *what) {
    cc_set_error("%s: bad shard manifest: %s", name, what);
    return -1;
}

/* A shard file name: relative, no "..", no control characters. */
static int file_name_ok(const char *s, size_t len) {
    if (len == 0 || len > 4096 || s[0] == '/' || memchr(s, 0, len)) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20) return 0;
    if (!strcmp(s, "..") || !strncmp(s, "../", 3) || strstr(s, "/../") ||
        (len >= 3 && !strcmp(s + len - 3, "/..")))
        return 0;
    return 1;
}

static int parse_shards(json_reader *r, const char *name, cc_manifest *m) {
    if (json_array_begin(r) != 0) return -1;
    int cap = 0, more;
    while ((more = json_array_next(r)) == 1) {
        if (m->n_shards >= CC_MANIFEST_MAX_SHARDS) return bad(name, "more than 4096 shards");
        if (m->n_shards == cap) {
            cap = cap ? cap * 2 : 8;
            char **f = realloc(m->files, sizeof(char *) * (size_t)cap);
            if (f) m->files = f;
            int64_t *c = realloc(m->counts, sizeof(int64_t) * (size_t)cap);
            if (c) m->counts = c;
            if (!f || !c) return bad(name, "out of memory");
        }
        int s = m->n_shards;
        m->files[s] = NULL;
        m->counts[s] = -1;
        m->n_shards++;
        if (json_object_begin(r) != 0) return -1;
        const char *key;
        int k;
        while ((k = json_object_next(r, &key)) == 1) {
            if (!strcmp(key, "file")) {
                const char *v;
                size_t len;
                if (m->files[s]) return bad(name, "shard \"file\" given twice");
                if (json_string(r, &v, &len) != 0) return -1;
                if (!file_name_ok(v, len)) return bad(name, "shard \"file\" must be a relative path without \"..\"");
                m->files[s] = strdup(v);
                if (!m->files[s]) return bad(name, "out of memory");
            } else if (!strcmp(key, "count")) {
                if (m->counts[s] >= 0) return bad(name, "shard \"count\" given twice");
                if (json_int64(r, &m->counts[s]) != 0) return -1;
                if (m->counts[s] < 0) return bad(name, "shard \"count\" must be >= 0");
            } else {
                return bad(name, "unknown key in a shard entry (expected \"file\", \"count\")");
            }
        }
        if (k < 0) return -1;
        if (!m->files[s] || m->counts[s] < 0) return bad(name, "a shard entry needs \"file\" and \"count\"");
    }
    if (more < 0) return -1;
    for (int a = 0; a < m->n_shards; a++)
        for (int b = a + 1; b < m->n_shards; b++)
            if (!strcmp(m->files[a], m->files[b])) return bad(name, "two shards name the same \"file\"");
    return 0;
}

int cc_manifest_parse(const char *text, size_t len, const char *name, cc_manifest *m) {
    memset(m, 0, sizeof *m);
    json_reader r;
    json_init(&r, text, len, name);
    int64_t version = -1, dim = -1;
    int have_metric = 0, have_shards = 0, k, rc = -1;
    const char *key;
    if (json_object_begin(&r) != 0) goto done;
    while ((k = json_object_next(&r, &key)) == 1) {
        const char *v;
        if (!strcmp(key, "clipc_manifest")) {
            if (json_int64(&r, &version) != 0) goto done;
        } else if (!strcmp(key, "dim")) {
            if (json_int64(&r, &dim) != 0) goto done;
        } else if (!strcmp(key, "type") || !strcmp(key, "model")) {
            char **slot = !strcmp(key, "type") ? &m->type : &m->model;
            size_t n;
            if (*slot) { bad(name, "a key is given twice"); goto done; }
            if (json_string(&r, &v, &n) != 0) goto done;
            if (memchr(v, 0, n)) { bad(name, "\"type\"/\"model\" holds a NUL"); goto done; }
            if (!(*slot = strdup(v))) { bad(name, "out of memory"); goto done; }
        } else if (!strcmp(key, "metric")) {
            if (json_string(&r, &v, NULL) != 0) goto done;
            if (!strcmp(v, "ip")) m->metric = CC_METRIC_IP;
            else if (!strcmp(v, "l2")) m->metric = CC_METRIC_L2;
            else { bad(name, "\"metric\" must be \"ip\" or \"l2\""); goto done; }
            have_metric = 1;
        } else if (!strcmp(key, "shards")) {
            if (have_shards) { bad(name, "\"shards\" given twice"); goto done; }
            have_shards = 1;
            if (parse_shards(&r, name, m) != 0) goto done;
        } else {
            bad(name, "unknown key (expected clipc_manifest, type, metric, dim, model, shards)");
            goto done;
        }
    }
    if (k < 0 || json_end(&r) != 0) goto done;
    if (version != 1) { bad(name, "\"clipc_manifest\" must be 1"); goto done; }
    if (dim < 1 || dim > 65536) { bad(name, "\"dim\" must be between 1 and 65536"); goto done; }
    if (!m->type || !m->type[0]) { bad(name, "\"type\" is missing"); goto done; }
    if (!m->model || !have_metric) { bad(name, "\"model\" and \"metric\" are required"); goto done; }
    if (!have_shards || m->n_shards < 1) { bad(name, "\"shards\" must list at least one shard"); goto done; }
    m->dim = (int)dim;
    rc = 0;
done:
    json_free(&r);
    if (rc != 0) {
        cc_manifest_free(m);
        if (!strstr(cc_last_error(), "bad shard manifest")) cc_prefix_error("bad shard manifest");
    }
    return rc;
}

int cc_manifest_load(const char *path, cc_manifest *out) {
    char *text;
    size_t size;
    memset(out, 0, sizeof *out);
    if (cc_read_file(path, &text, &size) != 0) return -1;
    int rc = cc_manifest_parse(text, size, path, out);
    free(text);
    return rc;
}

static void put_json_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    fputc('"', fp);
}

int cc_manifest_save(const cc_manifest *m, const char *path) {
    cc_atomic_file af;
    if (cc_atomic_open(&af, path) != 0) return -1;
    fprintf(af.fp, "{\"clipc_manifest\": 1, \"type\": ");
    put_json_string(af.fp, m->type);
    fprintf(af.fp, ", \"metric\": \"%s\", \"dim\": %d, \"model\": ", cc_metric_name(m->metric), m->dim);
    put_json_string(af.fp, m->model ? m->model : "");
    fprintf(af.fp, ",\n \"shards\": [");
    for (int s = 0; s < m->n_shards; s++) {
        fprintf(af.fp, "%s\n  {\"file\": ", s ? "," : "");
        put_json_string(af.fp, m->files[s]);
        fprintf(af.fp, ", \"count\": %lld}", (long long)m->counts[s]);
    }
    fprintf(af.fp, "]}\n");
    return cc_atomic_commit(&af);
}

char *cc_manifest_shard_path(const char *manifest_path, const char *file) {
    const char *slash = strrchr(manifest_path, '/');
    size_t dir = slash ? (size_t)(slash - manifest_path + 1) : 0;
    char *p = malloc(dir + strlen(file) + 1);
    if (!p) { cc_set_error("out of memory"); return NULL; }
    memcpy(p, manifest_path, dir);
    strcpy(p + dir, file);
    return p;
}

/* a better than b: higher IP / lower L2, then lower id */
static int better(float sa, int64_t ia, float sb, int64_t ib, cc_metric metric) {
    if (sa != sb) return metric == CC_METRIC_IP ? sa > sb : sa < sb;
    return ia < ib;
}

int cc_topk_merge(int n_lists, const int64_t *const *ids, const float *const *scores, const int *k_list,
                  int64_t nq, int k, cc_metric metric, int64_t *out_ids, float *out_scores) {
    int *pos = calloc((size_t)n_lists, sizeof(int));
    if (!pos) { cc_set_error("out of memory"); return -1; }
    float worst = metric == CC_METRIC_IP ? -INFINITY : INFINITY;
    for (int64_t q = 0; q < nq; q++) {
        memset(pos, 0, sizeof(int) * (size_t)n_lists);
        for (int j = 0; j < k; j++) {
            int pick = -1;
            float ps = worst;
            int64_t pid = -1;
            for (int s = 0; s < n_lists; s++) {
                if (k_list[s] <= 0) continue;
                const int64_t *li = ids[s] + q * k_list[s];
                while (pos[s] < k_list[s] && li[pos[s]] < 0) pos[s]++;
                if (pos[s] >= k_list[s]) continue;
                float sc = scores[s][q * k_list[s] + pos[s]];
                if (pick < 0 || better(sc, li[pos[s]], ps, pid, metric)) {
                    pick = s;
                    ps = sc;
                    pid = li[pos[s]];
                }
            }
            out_ids[q * k + j] = pid;
            if (out_scores) out_scores[q * k + j] = pick < 0 ? worst : ps;
            if (pick >= 0) pos[pick]++;
        }
    }
    free(pos);
    return 0;
}
