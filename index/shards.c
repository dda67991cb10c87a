/* shards.c — a sharded index in memory: open a manifest and its shards (checked against it), merged
 * search, build, add and remove routed by id % N, and the commit that writes changed shards under
 * fresh names before the manifest (index/manifest.h). */
#include "index/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/util.h"

void cc_shards_close(cc_shards *s) {
    for (int i = 0; s->idx && i < s->m.n_shards; i++) cc_index_free(s->idx[i]);
    free(s->idx);
    cc_manifest_free(&s->m);
    s->idx = NULL;
}

/* Shard i as loaded must be what the manifest says it is. */
static int check_shard(const char *manifest_path, const char *path, const cc_index *x, const cc_manifest *m,
                       const char *canonical_type, int i) {
    if (strcmp(cc_index_desc(x), canonical_type) != 0) {
        cc_set_error("%s: shard %d (%s) is a %s index, the manifest says %s", manifest_path, i, path,
                     cc_index_desc(x), canonical_type);
        return -1;
    }
    if (cc_index_dim(x) != m->dim || cc_index_metric(x) != m->metric || cc_index_count(x) != m->counts[i]) {
        cc_set_error("%s: shard %d (%s) does not match the manifest (dim %d/%d, metric %s/%s, count %lld/%lld)",
                     manifest_path, i, path, cc_index_dim(x), m->dim, cc_metric_name(cc_index_metric(x)),
                     cc_metric_name(m->metric), (long long)cc_index_count(x), (long long)m->counts[i]);
        return -1;
    }
    return 0;
}

int cc_shards_open_flags(const char *manifest_path, int flags, cc_shards *out) {
    memset(out, 0, sizeof *out);
    if (cc_manifest_load(manifest_path, &out->m) != 0) return -1;
    cc_index *probe = cc_index_create(out->m.type, out->m.dim, out->m.metric);
    if (!probe) {
        cc_prefix_error("%s: \"type\"", manifest_path);
        goto fail;
    }
    out->idx = calloc((size_t)out->m.n_shards, sizeof(cc_index *));
    if (!out->idx) { cc_set_error("out of memory"); goto fail; }
    for (int i = 0; i < out->m.n_shards; i++) {
        char *p = cc_manifest_shard_path(manifest_path, out->m.files[i]);
        if (!p) goto fail;
        out->idx[i] = cc_index_load_flags(p, flags);
        int rc = out->idx[i] ? check_shard(manifest_path, p, out->idx[i], &out->m, cc_index_desc(probe), i) : -1;
        if (!out->idx[i]) cc_prefix_error("%s: shard %d", manifest_path, i);
        free(p);
        if (rc != 0) goto fail;
    }
    cc_index_free(probe);
    return 0;
fail:
    cc_index_free(probe);
    cc_shards_close(out);
    return -1;
}

int cc_shards_open(const char *manifest_path, cc_shards *out) { return cc_shards_open_flags(manifest_path, 0, out); }

int64_t cc_shards_count(const cc_shards *s) {
    int64_t n = 0;
    for (int i = 0; i < s->m.n_shards; i++) n += cc_index_count(s->idx[i]);
    return n;
}

const cc_index *cc_shards_owner(const cc_shards *s, int64_t id) {
    return id < 0 ? NULL : s->idx[cc_manifest_shard_of(id, s->m.n_shards)];
}

int64_t cc_shards_next_id(const cc_shards *s) {
    int64_t next = 0;
    for (int i = 0; i < s->m.n_shards; i++)
        if (cc_index_next_id(s->idx[i]) > next) next = cc_index_next_id(s->idx[i]);
    return next;
}

int cc_shards_search(const cc_shards *s, int64_t nq, const float *queries, int k, const cc_search_params *params,
                     int64_t *out_ids, float *out_scores) {
    return cc_shards_search_filtered(s, nq, queries, k, params, NULL, out_ids, out_scores);
}

int cc_shards_search_filtered(const cc_shards *s, int64_t nq, const float *queries, int k,
                              const cc_search_params *params, const cc_id_filter *allow, int64_t *out_ids,
                              float *out_scores) {
    int n = s->m.n_shards, rc = -1;
    int64_t **ids = calloc((size_t)n, sizeof *ids);
    float **sc = calloc((size_t)n, sizeof *sc);
    int *kl = calloc((size_t)n, sizeof *kl);
    if (!ids || !sc || !kl) { cc_set_error("out of memory"); goto done; }
    if (k < 1 || k > cc_shards_count(s)) {
        cc_set_error("k = %d must be between 1 and the size of the sharded index (%lld vectors)", k,
                     (long long)cc_shards_count(s));
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int64_t c = cc_index_count(s->idx[i]);
        kl[i] = (int)(c < k ? c : k);
        if (kl[i] == 0) continue;
        ids[i] = malloc(sizeof(int64_t) * (size_t)(nq * kl[i]));
        sc[i] = malloc(sizeof(float) * (size_t)(nq * kl[i]));
        if (!ids[i] || !sc[i]) { cc_set_error("out of memory"); goto done; }
        cc_search_params p = params ? *params : (cc_search_params){0};
        if (allow) p.filter = &allow[i];
        if (cc_index_search_ex(s->idx[i], nq, queries, kl[i], &p, ids[i], sc[i]) != 0) goto done;
    }
    rc = cc_topk_merge(n, (const int64_t *const *)ids, (const float *const *)sc, kl, nq, k, s->m.metric, out_ids,
                       out_scores);
done:
    for (int i = 0; ids && sc && i < n; i++) { free(ids[i]); free(sc[i]); }
    free(ids); free(sc); free(kl);
    return rc;
}

/* ------------------------------------------------------------------ commit */

/* The fresh file name of shard i: BASE.shard<i>, or BASE.shard<i>.alt when that is the current one. */
static char *fresh_name(const char *manifest_path, int i, const char *current) {
    const char *slash = strrchr(manifest_path, '/');
    const char *base = slash ? slash + 1 : manifest_path;
    size_t len = strlen(base) + 32;
    char *name = malloc(len);
    if (!name) { cc_set_error("out of memory"); return NULL; }
    snprintf(name, len, "%s.shard%d", base, i);
    if (current && !strcmp(current, name)) snprintf(name, len, "%s.shard%d.alt", base, i);
    return name;
}

static int names_file(const cc_manifest *m, const char *file) {
    for (int i = 0; i < m->n_shards; i++)
        if (m->files[i] && !strcmp(m->files[i], file)) return 1;
    return 0;
}

static void unlink_shard(const char *manifest_path, const char *file) {
    char *p = cc_manifest_shard_path(manifest_path, file);
    if (p) unlink(p);
    free(p);
}

/* Saves shard i under a fresh name; on success *prev holds its previous name (may be NULL). */
static int save_fresh(cc_shards *s, const char *manifest_path, int i, char **prev) {
    char *name = fresh_name(manifest_path, i, s->m.files[i]);
    char *path = name ? cc_manifest_shard_path(manifest_path, name) : NULL;
    int rc = path ? cc_index_save(s->idx[i], path) : -1;
    free(path);
    if (rc != 0) {
        free(name);
        return -1;
    }
    *prev = s->m.files[i];
    s->m.files[i] = name;
    s->m.counts[i] = cc_index_count(s->idx[i]);
    return 0;
}

/* Writes the dirty shards, then the manifest; afterwards deletes the files that `before` (the
 * manifest as it was on disk; may be NULL) named and the new one does not. On error every new file
 * is removed and s->m is as it was. */
static int shards_commit(cc_shards *s, const char *manifest_path, const uint8_t *dirty, const cc_manifest *before) {
    int n = s->m.n_shards, rc = -1;
    char **prev = calloc((size_t)n, sizeof *prev);
    int64_t *old_counts = malloc(sizeof(int64_t) * (size_t)n);
    uint8_t *written = calloc((size_t)n, 1);
    if (!prev || !old_counts || !written) { cc_set_error("out of memory"); goto done; }
    memcpy(old_counts, s->m.counts, sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        if (!dirty[i]) continue;
        if (save_fresh(s, manifest_path, i, &prev[i]) != 0) goto undo;
        written[i] = 1;
    }
    if (cc_manifest_save(&s->m, manifest_path) != 0) goto undo;
    for (int i = 0; before && i < before->n_shards; i++)
        if (!names_file(&s->m, before->files[i])) unlink_shard(manifest_path, before->files[i]);
    rc = 0;
    for (int i = 0; i < n; i++) free(prev[i]);
    goto done;
undo:
    for (int i = 0; i < n; i++) {
        if (!written[i]) continue;
        unlink_shard(manifest_path, s->m.files[i]);
        free(s->m.files[i]);
        s->m.files[i] = prev[i];
    }
    memcpy(s->m.counts, old_counts, sizeof(int64_t) * (size_t)n);
done:
    free(prev); free(old_counts); free(written);
    return rc;
}

/* A copy of the names of s's manifest (what is on disk before a commit). */
static int copy_names(const cc_manifest *from, cc_manifest *to) {
    memset(to, 0, sizeof *to);
    to->files = calloc((size_t)from->n_shards, sizeof(char *));
    if (!to->files) { cc_set_error("out of memory"); return -1; }
    to->n_shards = from->n_shards;
    for (int i = 0; i < from->n_shards; i++)
        if (!(to->files[i] = strdup(from->files[i]))) {
            cc_set_error("out of memory");
            cc_manifest_free(to);
            return -1;
        }
    return 0;
}

static int commit_in_place(cc_shards *s, const char *manifest_path, const uint8_t *dirty) {
    cc_manifest before;
    if (copy_names(&s->m, &before) != 0) return -1;
    int rc = shards_commit(s, manifest_path, dirty, &before);
    cc_manifest_free(&before);
    return rc;
}

/* ------------------------------------------------------------------ add / remove */

/* Rows of a batch whose id falls into shard sh (ids already resolved), gathered. */
typedef struct shard_rows {
    int64_t m;
    float *x;
    int64_t *ids, *times;
    const char **texts, **tags;
} shard_rows;

static void rows_free(shard_rows *r) {
    free(r->x); free(r->ids); free(r->times); free(r->texts); free(r->tags);
    memset(r, 0, sizeof *r);
}

static int gather_rows(int sh, int n_shards, int dim, int64_t n, const float *x, const int64_t *ids,
                       const char *const *texts, const int64_t *times, const char *const *tags, shard_rows *r) {
    memset(r, 0, sizeof *r);
    for (int64_t i = 0; i < n; i++) r->m += cc_manifest_shard_of(ids[i], n_shards) == sh;
    size_t m1 = (size_t)(r->m ? r->m : 1);
    r->x = malloc(sizeof(float) * m1 * (size_t)dim);
    r->ids = malloc(sizeof(int64_t) * m1);
    r->texts = texts ? malloc(sizeof(char *) * m1) : NULL;
    r->times = times ? malloc(sizeof(int64_t) * m1) : NULL;
    r->tags = tags ? malloc(sizeof(char *) * m1) : NULL;
    if (!r->x || !r->ids || (texts && !r->texts) || (times && !r->times) || (tags && !r->tags)) {
        rows_free(r);
        cc_set_error("out of memory");
        return -1;
    }
    for (int64_t i = 0, j = 0; i < n; i++) {
        if (cc_manifest_shard_of(ids[i], n_shards) != sh) continue;
        memcpy(r->x + j * dim, x + i * dim, sizeof(float) * (size_t)dim);
        r->ids[j] = ids[i];
        if (texts) r->texts[j] = texts[i];
        if (times) r->times[j] = times[i];
        if (tags) r->tags[j] = tags[i];
        j++;
    }
    return 0;
}

/* ids given, or first..first+n-1 (malloc'd into *own); every id must be >= 0. */
static const int64_t *resolve_ids(int64_t n, const int64_t *ids, int64_t first, int64_t **own) {
    *own = NULL;
    if (ids) {
        for (int64_t i = 0; i < n; i++)
            if (ids[i] < 0) {
                cc_set_error("id %lld (row %lld) is negative", (long long)ids[i], (long long)i);
                return NULL;
            }
        return ids;
    }
    if (first > INT64_MAX - n) {
        cc_set_error("%lld automatic ids after id %lld would overflow; give ids", (long long)n, (long long)first);
        return NULL;
    }
    *own = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!*own) { cc_set_error("out of memory"); return NULL; }
    for (int64_t i = 0; i < n; i++) (*own)[i] = first + i;
    return *own;
}

/* Duplicate ids within one batch would meet in the same shard; the shard's add refuses them. */
int cc_shards_add(cc_shards *s, const char *manifest_path, int64_t n, const float *x, const int64_t *ids,
                  const char *const *texts, const int64_t *timestamps, const char *const *tags) {
    int ns = s->m.n_shards, rc = -1;
    int64_t *own;
    const int64_t *all = resolve_ids(n, ids, cc_shards_next_id(s), &own);
    uint8_t *dirty = calloc((size_t)ns, 1);
    if (!all || !dirty) {
        if (!dirty) cc_set_error("out of memory");
        goto done;
    }
    for (int sh = 0; sh < ns; sh++) {
        shard_rows r;
        if (gather_rows(sh, ns, s->m.dim, n, x, all, texts, timestamps, tags, &r) != 0) goto done;
        int bad = r.m && cc_index_add_items_tagged(s->idx[sh], r.m, r.x, r.ids, r.texts, r.times,
                                                   (const char *const *)r.tags) != 0;
        dirty[sh] = r.m > 0;
        rows_free(&r);
        if (bad) {
            cc_prefix_error("shard %d", sh);
            goto done;
        }
    }
    rc = commit_in_place(s, manifest_path, dirty);
done:
    free(own);
    free(dirty);
    return rc;
}

int64_t cc_shards_remove(cc_shards *s, const char *manifest_path, int64_t n, const int64_t *ids) {
    int ns = s->m.n_shards;
    uint8_t *dirty = calloc((size_t)ns, 1);
    int64_t removed = 0;
    if (!dirty) { cc_set_error("out of memory"); return -1; }
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0) continue;
        int sh = cc_manifest_shard_of(ids[i], ns);
        int64_t r = cc_index_remove(s->idx[sh], 1, &ids[i]);
        if (r < 0) { free(dirty); return -1; }
        removed += r;
        dirty[sh] |= r > 0;
    }
    int rc = commit_in_place(s, manifest_path, dirty);
    free(dirty);
    return rc == 0 ? removed : -1;
}

/* ------------------------------------------------------------------ build */

/* One shard, in memory: the rows whose id falls into it, trained on them, added. */
static cc_index *build_one_shard(const cc_shard_spec *b, int s, int64_t n, const float *x, const int64_t *ids,
                                 const char *const *texts, const int64_t *times, const char *const *tags) {
    shard_rows r;
    if (gather_rows(s, b->n_shards, b->dim, n, x, ids, texts, times, tags, &r) != 0) return NULL;
    cc_index *idx = cc_index_create(b->desc, b->dim, b->metric);
    int ok = idx != NULL;
    if (ok && b->ef_construction) ok = cc_index_set_param(idx, "efConstruction", b->ef_construction) >= 0;
    if (ok && b->seed >= 0) ok = cc_index_set_param(idx, "seed", b->seed) >= 0;
    for (int i = 0; ok && b->meta_from && i < cc_index_meta_count(b->meta_from); i++) {
        const char *key, *value;
        cc_index_meta_at(b->meta_from, i, &key, &value);
        ok = cc_index_set_meta(idx, key, value) == 0;
    }
    if (ok && !cc_index_is_trained(idx)) {
        if (r.m == 0) cc_set_error("shard %d gets no vectors and %s needs training: use fewer shards", s, b->desc);
        ok = r.m > 0 && cc_index_train(idx, r.m, r.x) == 0;
    }
    if (ok && r.m)
        ok = cc_index_add_items_tagged(idx, r.m, r.x, r.ids, r.texts, r.times, (const char *const *)r.tags) == 0;
    rows_free(&r);
    if (!ok) {
        cc_index_free(idx);
        return NULL;
    }
    return idx;
}

/* An empty in-memory shard set with n shards of spec's type (no files named yet). */
static int shards_new(const cc_shard_spec *b, cc_shards *s) {
    memset(s, 0, sizeof *s);
    cc_index *probe = cc_index_create(b->desc, b->dim, b->metric);
    if (!probe) return -1;
    const char *model = b->meta_from ? cc_index_get_meta(b->meta_from, "model") : NULL;
    s->m.type = strdup(cc_index_desc(probe));
    cc_index_free(probe);
    s->m.model = strdup(model ? model : "");
    s->m.metric = b->metric;
    s->m.dim = b->dim;
    s->m.files = calloc((size_t)b->n_shards, sizeof(char *));
    s->m.counts = calloc((size_t)b->n_shards, sizeof(int64_t));
    s->idx = calloc((size_t)b->n_shards, sizeof(cc_index *));
    if (!s->m.type || !s->m.model || !s->m.files || !s->m.counts || !s->idx) {
        cc_set_error("out of memory");
        free(s->idx);
        s->idx = NULL;
        cc_manifest_free(&s->m);
        return -1;
    }
    s->m.n_shards = b->n_shards;
    return 0;
}

int cc_shards_build(const char *out, const cc_shard_spec *b, int64_t n, const float *x, const int64_t *ids,
                    const char *const *texts, const int64_t *timestamps, const char *const *tags) {
    if (b->n_shards < 1 || b->n_shards > CC_MANIFEST_MAX_SHARDS) {
        cc_set_error("the number of shards must be between 1 and %d, got %d", CC_MANIFEST_MAX_SHARDS, b->n_shards);
        return -1;
    }
    cc_shards s;
    cc_manifest before = {0};
    int64_t *own;
    uint8_t *dirty = NULL;
    int rc = -1, have_before = 0;
    const int64_t *all = resolve_ids(n, ids, 0, &own);
    if (!all || shards_new(b, &s) != 0) {
        free(own);
        return -1;
    }
    if (!(dirty = malloc((size_t)b->n_shards))) { cc_set_error("out of memory"); goto done; }
    memset(dirty, 1, (size_t)b->n_shards);
    for (int i = 0; i < b->n_shards; i++)
        if (!(s.idx[i] = build_one_shard(b, i, n, x, all, texts, timestamps, tags))) {
            cc_prefix_error("%s", out);
            goto done;
        }
    /* a manifest already at out: its files get replaced, and fresh names avoid the ones it uses */
    if (cc_manifest_is_manifest(out) && cc_manifest_load(out, &before) == 0) {
        have_before = 1;
        for (int i = 0; i < b->n_shards && i < before.n_shards; i++)
            if (!(s.m.files[i] = strdup(before.files[i]))) { cc_set_error("out of memory"); goto done; }
    }
    rc = shards_commit(&s, out, dirty, have_before ? &before : NULL);
done:
    if (have_before) cc_manifest_free(&before);
    cc_shards_close(&s);
    free(dirty);
    free(own);
    return rc;
}
