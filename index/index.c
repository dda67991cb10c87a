/* index.c — the common layer of clipc's indexes: description parsing, slots and ids, removal,
 * argument checks, the search entry points (which convert internal similarities and slots into
 * scores and ids), parameters and metadata. The per-type work lives in flat.c, ivf.c and hnsw.c,
 * the file format in io.c, tuning in tune.c. See index.h for the API and internal.h for the
 * shared structures. */
#include "index/index.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/internal.h"

#define MAX_IVF_NLIST (1 << 20)  /* largest nlist accepted */
#define MAX_PQ_M 256             /* sub-quantisers: 8-bit sums of M bytes must fit uint16 */
#define MIN_HNSW_M 2
#define MAX_HNSW_M 256           /* level-0 degree is 2*M */
#define MAX_KV_ENTRIES 4096      /* metadata keys */
#define MAX_KV_TEXT 65536        /* bytes of one metadata key or value */
#define BAD_ROWS_LISTED 5        /* rows named in a NaN/Inf error */

/* ------------------------------------------------------------------ buffers */

int cc_buf_reserve(cc_buf *b, size_t bytes, const char *what) {
    if (b->owned && b->cap >= bytes) return 0;
    size_t cap = b->owned ? b->cap + b->cap / 2 : 0;
    if (cap < bytes) cap = bytes;
    if (cap < 64) cap = 64;
    uint8_t *p = cc_malloc_aligned(cap, what);
    if (!p) return -1;
    if (b->size) memcpy(p, b->ptr, b->size);
    if (b->owned) cc_free_aligned(b->ptr);
    b->ptr = p;
    b->cap = cap;
    b->owned = 1;
    return 0;
}

int cc_buf_resize(cc_buf *b, size_t bytes, const char *what) {
    if (bytes > b->size && (!b->owned || bytes > b->cap)) {
        if (cc_buf_reserve(b, bytes, what) != 0) return -1;
    }
    if (bytes > b->size) memset(b->ptr + b->size, 0, bytes - b->size);
    b->size = bytes;
    return 0;
}

int cc_buf_append(cc_buf *b, const void *data, size_t bytes, const char *what) {
    size_t old = b->size;
    if (cc_buf_resize(b, old + bytes, what) != 0) return -1;
    if (bytes) memcpy(b->ptr + old, data, bytes);
    return 0;
}

void cc_buf_view(cc_buf *b, const void *ptr, size_t size) {
    cc_buf_free(b);
    b->ptr = (uint8_t *)ptr;
    b->size = size;
    b->cap = size;
    b->owned = 0;
}

void cc_buf_free(cc_buf *b) {
    if (b->owned) cc_free_aligned(b->ptr);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ small helpers */

int cc_parse_int64(const char *text, int64_t lo, int64_t hi, int64_t *out) {
    if (!text || !*text) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

const char *cc_metric_name(cc_metric metric) { return metric == CC_METRIC_L2 ? "l2" : "ip"; }

/* A float is NaN or Inf exactly when its exponent bits are all ones: an integer test the compiler
 * vectorises (a float reduction would need -ffast-math). */
static int row_finite(const float *row, int dim) {
    uint32_t any = 0;
    for (int j = 0; j < dim; j++) {
        uint32_t bits;
        memcpy(&bits, row + j, sizeof bits);
        any |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return !any;
}

int cc_check_finite(const float *x, int64_t n, int dim, const char *what) {
    int64_t bad[BAD_ROWS_LISTED], n_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (row_finite(x + i * dim, dim)) continue;
        if (n_bad < BAD_ROWS_LISTED) bad[n_bad] = i;
        n_bad++;
    }
    if (!n_bad) return 0;
    char list[128] = "";
    int len = 0;
    for (int64_t i = 0; i < n_bad && i < BAD_ROWS_LISTED; i++)
        len += snprintf(list + len, sizeof list - (size_t)len, "%s%lld", i ? ", " : "", (long long)bad[i]);
    cc_set_error("%s contain NaN or Inf at row%s %s%s (%lld row%s in all)", what, n_bad > 1 ? "s" : "", list,
                 n_bad > BAD_ROWS_LISTED ? ", ..." : "", (long long)n_bad, n_bad > 1 ? "s" : "");
    return -1;
}

/* ------------------------------------------------------------------ description */

typedef struct parsed_desc {
    cc_index_kind kind;
    int nlist, pq_m, pq_nbits, by_residual, refine, hnsw_m;
} parsed_desc;

/* Reads "<prefix><number>" from the token; 0 on success. */
static int parse_prefixed(const char *tok, size_t len, const char *prefix, int lo, int hi, int *out,
                          const char **rest) {
    size_t plen = strlen(prefix);
    if (len <= plen || strncmp(tok, prefix, plen) != 0 || !isdigit((unsigned char)tok[plen])) return -1;
    long v = 0;
    size_t i = plen;
    while (i < len && isdigit((unsigned char)tok[i])) {
        v = v * 10 + (tok[i] - '0');
        if (v > hi) return -2;
        i++;
    }
    if (v < lo) return -2;
    *out = (int)v;
    *rest = tok + i;
    return 0;
}

static int parse_pq_token(const char *tok, size_t len, parsed_desc *p, const char *desc) {
    const char *rest;
    int rc = parse_prefixed(tok, len, "PQ", 1, MAX_PQ_M, &p->pq_m, &rest);
    if (rc == -2) {
        cc_set_error("index type '%s': PQ needs 1..%d sub-quantisers", desc, MAX_PQ_M);
        return -1;
    }
    if (rc != 0) return -1;
    p->pq_nbits = 8;
    size_t left = len - (size_t)(rest - tok);
    if (left > 0) {
        if (rest[0] != 'x' || left < 2) return -1;
        int nbits = 0;
        for (size_t i = 1; i < left; i++) {
            if (!isdigit((unsigned char)rest[i])) return -1;
            nbits = nbits * 10 + (rest[i] - '0');
            if (nbits > 64) break;
        }
        if (nbits != 8) {
            cc_set_error("index type '%s': only 8-bit PQ codes are supported (PQ%dx8), not %d bits", desc, p->pq_m,
                         nbits);
            return -1;
        }
    }
    return 0;
}

static int parse_desc(const char *desc, parsed_desc *p) {
    memset(p, 0, sizeof *p);
    const char *tokens[4];
    size_t lens[4];
    int n_tok = 0;
    for (const char *s = desc;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (n_tok == 4 || len == 0) goto bad;
        tokens[n_tok] = s;
        lens[n_tok++] = len;
        if (!comma) break;
        s = comma + 1;
    }
#define TOKEN_IS(i, text) (lens[i] == strlen(text) && strncmp(tokens[i], text, lens[i]) == 0)
    const char *rest;
    int rc;
    if (n_tok == 1 && TOKEN_IS(0, "Flat")) {
        p->kind = CC_KIND_FLAT;
        return 0;
    }
    if ((rc = parse_prefixed(tokens[0], lens[0], "HNSW", MIN_HNSW_M, MAX_HNSW_M, &p->hnsw_m, &rest)) != -1) {
        if (rc == -2) {
            cc_set_error("index type '%s': HNSW M must be %d..%d", desc, MIN_HNSW_M, MAX_HNSW_M);
            return -1;
        }
        if (rest != tokens[0] + lens[0]) goto bad;
        if (n_tok == 2 && !TOKEN_IS(1, "Flat")) {
            cc_set_error("index type '%s': HNSW stores raw vectors only (HNSW%d or HNSW%d,Flat)", desc, p->hnsw_m,
                         p->hnsw_m);
            return -1;
        }
        if (n_tok > 2) goto bad;
        p->kind = CC_KIND_HNSW;
        return 0;
    }
    int tok = 0;
    p->kind = CC_KIND_IVF;
    if ((rc = parse_prefixed(tokens[0], lens[0], "IVF", 1, MAX_IVF_NLIST, &p->nlist, &rest)) != -1) {
        if (rc == -2) {
            cc_set_error("index type '%s': IVF needs 1..%d lists", desc, MAX_IVF_NLIST);
            return -1;
        }
        if (rest != tokens[0] + lens[0]) goto bad;
        p->by_residual = 1;
        tok = 1;
        if (n_tok == 2 && TOKEN_IS(1, "Flat")) return 0;
    } else {
        p->nlist = 1;
        p->by_residual = 0;
    }
    if (tok >= n_tok) goto bad;
    cc_clear_error();
    if (parse_pq_token(tokens[tok], lens[tok], p, desc) != 0) {
        if (strcmp(cc_last_error(), "unknown error") != 0) return -1;
        goto bad;
    }
    tok++;
    if (tok < n_tok && TOKEN_IS(tok, "RFlat")) {
        p->refine = 1;
        tok++;
    }
    if (tok != n_tok) goto bad;
    return 0;
#undef TOKEN_IS
bad:
    cc_set_error("unknown index type '%s' (expected Flat, IVF<nlist>,Flat, IVF<nlist>,PQ<M>[x8][,RFlat], "
                 "PQ<M>[x8][,RFlat], HNSW<M>[,Flat])",
                 desc);
    return -1;
}

static void canonical_desc(const parsed_desc *p, char *out, size_t size) {
    int len = 0;
    switch (p->kind) {
    case CC_KIND_FLAT: snprintf(out, size, "Flat"); return;
    case CC_KIND_HNSW: snprintf(out, size, "HNSW%d", p->hnsw_m); return;
    case CC_KIND_IVF:
        if (p->by_residual) len = snprintf(out, size, "IVF%d,", p->nlist);
        if (!p->pq_m) snprintf(out + len, size - (size_t)len, "Flat");
        else snprintf(out + len, size - (size_t)len, "PQ%d%s", p->pq_m, p->refine ? ",RFlat" : "");
        return;
    }
}

/* ------------------------------------------------------------------ lifetime */

static cc_index *index_alloc(int dim, cc_metric metric) {
    cc_index *idx = cc_calloc(1, sizeof *idx, "index");
    if (!idx) return NULL;
    idx->dim = dim;
    idx->metric = metric;
    idx->nprobe = CC_INDEX_DEFAULT_NPROBE;
    idx->ef_search = CC_INDEX_DEFAULT_EF_SEARCH;
    idx->rerank = CC_INDEX_DEFAULT_RERANK;
    idx->ef_construction = CC_INDEX_DEFAULT_EF_CONSTRUCTION;
    idx->seed = CC_INDEX_DEFAULT_SEED;
    idx->labels_identity = 1;
    pthread_mutex_init(&idx->map_lock, NULL);
    return idx;
}

/* Shared by create and load: sets kind, desc and the type state. */
int cc_index_setup_type(cc_index *idx, const char *desc) {
    parsed_desc p;
    if (parse_desc(desc, &p) != 0) return -1;
    idx->kind = p.kind;
    canonical_desc(&p, idx->desc, sizeof idx->desc);
    switch (p.kind) {
    case CC_KIND_FLAT: idx->trained = 1; return cc_flat_init(idx);
    case CC_KIND_HNSW: idx->trained = 1; return cc_hnsw_init(idx, p.hnsw_m);
    case CC_KIND_IVF:
        if (p.pq_m && idx->dim % p.pq_m != 0) {
            cc_set_error("index type '%s': dimension %d is not a multiple of PQ M = %d", desc, idx->dim, p.pq_m);
            return -1;
        }
        return cc_ivf_init(idx, p.nlist, p.pq_m, p.pq_nbits, p.by_residual, p.refine);
    }
    return -1;
}

cc_index *cc_index_create_empty(int dim, cc_metric metric) { return index_alloc(dim, metric); }

cc_index *cc_index_create(const char *desc, int dim, cc_metric metric) {
    if (!desc) {
        cc_set_error("index type: missing description");
        return NULL;
    }
    if (dim < 1 || dim > CC_INDEX_MAX_DIM) {
        cc_set_error("index '%s': dimension %d out of range 1..%d", desc, dim, CC_INDEX_MAX_DIM);
        return NULL;
    }
    if (metric != CC_METRIC_IP && metric != CC_METRIC_L2) {
        cc_set_error("index '%s': unknown metric %d", desc, (int)metric);
        return NULL;
    }
    cc_index *idx = index_alloc(dim, metric);
    if (!idx) return NULL;
    if (cc_index_setup_type(idx, desc) != 0) {
        cc_index_free(idx);
        return NULL;
    }
    return idx;
}

static void free_kv(cc_index *idx) {
    for (int i = 0; i < idx->n_kv; i++) {
        free(idx->kv_keys[i]);
        free(idx->kv_values[i]);
    }
    free(idx->kv_keys);
    free(idx->kv_values);
    idx->kv_keys = idx->kv_values = NULL;
    idx->n_kv = 0;
}

void cc_index_free(cc_index *idx) {
    if (!idx) return;
    if (idx->kind == CC_KIND_FLAT) cc_flat_free(idx);
    if (idx->ivf) cc_ivf_free(idx);
    if (idx->hnsw) cc_hnsw_free(idx);
    cc_buf_free(&idx->labels);
    cc_buf_free(&idx->removed);
    cc_buf_free(&idx->vectors);
    cc_buf_free(&idx->norms);
    cc_buf_free(&idx->item_text);
    cc_buf_free(&idx->text_pool);
    cc_buf_free(&idx->item_time);
    free_kv(idx);
    free(idx->map.keys);
    free(idx->map.values);
    pthread_mutex_destroy(&idx->map_lock);
    cc_index_unmap(idx);
    free(idx);
}

/* ------------------------------------------------------------------ accessors */

const char *cc_index_desc(const cc_index *idx) { return idx->desc; }
int cc_index_dim(const cc_index *idx) { return idx->dim; }
cc_metric cc_index_metric(const cc_index *idx) { return idx->metric; }
int64_t cc_index_count(const cc_index *idx) { return idx->n_live; }
int cc_index_is_trained(const cc_index *idx) { return idx->trained; }

int64_t cc_index_memory_bytes(const cc_index *idx) {
    int64_t bytes = (int64_t)(idx->labels.size + idx->removed.size + idx->vectors.size + idx->norms.size +
                              idx->item_text.size + idx->text_pool.size + idx->item_time.size);
    if (idx->ivf) bytes += cc_ivf_memory(idx);
    if (idx->hnsw) bytes += cc_hnsw_memory(idx);
    return bytes;
}

/* ------------------------------------------------------------------ label -> slot map */

static uint64_t hash_label(int64_t label) {
    uint64_t z = (uint64_t)label + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int map_grow(cc_label_map *m, int64_t min_count) {
    int64_t cap = 64;
    while (cap < 2 * min_count) cap *= 2;
    if (cap <= m->cap) return 0;
    int64_t *keys = cc_malloc((size_t)cap * sizeof(int64_t), "id map");
    int64_t *values = cc_malloc((size_t)cap * sizeof(int64_t), "id map");
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    memset(keys, 0xff, (size_t)cap * sizeof(int64_t)); /* -1 = empty */
    for (int64_t i = 0; i < m->cap; i++) {
        if (m->keys[i] < 0) continue;
        int64_t pos = (int64_t)(hash_label(m->keys[i]) & (uint64_t)(cap - 1));
        while (keys[pos] >= 0) pos = (pos + 1) & (cap - 1);
        keys[pos] = m->keys[i];
        values[pos] = m->values[i];
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->cap = cap;
    return 0;
}

static int map_put(cc_label_map *m, int64_t label, int64_t slot) {
    if (2 * (m->count + 1) > m->cap && map_grow(m, m->count + 1) != 0) return -1;
    int64_t pos = (int64_t)(hash_label(label) & (uint64_t)(m->cap - 1));
    while (m->keys[pos] >= 0 && m->keys[pos] != label) pos = (pos + 1) & (m->cap - 1);
    if (m->keys[pos] < 0) m->count++;
    m->keys[pos] = label;
    m->values[pos] = slot;
    return 0;
}

static int64_t map_get(const cc_label_map *m, int64_t label) {
    if (!m->cap) return -1;
    int64_t pos = (int64_t)(hash_label(label) & (uint64_t)(m->cap - 1));
    while (m->keys[pos] >= 0) {
        if (m->keys[pos] == label) return m->values[pos];
        pos = (pos + 1) & (m->cap - 1);
    }
    return -1;
}

static void map_del(cc_label_map *m, int64_t label) {
    if (!m->cap) return;
    int64_t mask = m->cap - 1;
    int64_t pos = (int64_t)(hash_label(label) & (uint64_t)mask);
    while (m->keys[pos] >= 0 && m->keys[pos] != label) pos = (pos + 1) & mask;
    if (m->keys[pos] < 0) return;
    /* backward-shift deletion keeps probe chains intact without tombstones */
    int64_t hole = pos;
    for (int64_t next = (hole + 1) & mask; m->keys[next] >= 0; next = (next + 1) & mask) {
        int64_t home = (int64_t)(hash_label(m->keys[next]) & (uint64_t)mask);
        /* move next into the hole when its home is not in (hole, next] cyclically */
        int64_t dist_next = (next - home) & mask, dist_hole = (next - hole) & mask;
        if (dist_next >= dist_hole) {
            m->keys[hole] = m->keys[next];
            m->values[hole] = m->values[next];
            hole = next;
        }
    }
    m->keys[hole] = -1;
    m->count--;
}

static int build_map_locked(cc_index *idx) {
    if (idx->map_valid) return 0;
    cc_label_map fresh = {0};
    if (map_grow(&fresh, idx->n_live) != 0) return -1;
    for (int64_t s = 0; s < idx->n_slots; s++) {
        if (cc_slot_removed(idx, s)) continue;
        if (map_put(&fresh, cc_slot_label(idx, s), s) != 0) {
            free(fresh.keys);
            free(fresh.values);
            return -1;
        }
    }
    free(idx->map.keys);
    free(idx->map.values);
    idx->map = fresh;
    idx->map_valid = 1;
    return 0;
}

static int ensure_map(const cc_index *cidx) {
    cc_index *idx = (cc_index *)cidx; /* the map is a cache: building it does not change the index */
    if (__atomic_load_n(&idx->map_valid, __ATOMIC_ACQUIRE)) return 0;
    pthread_mutex_lock(&idx->map_lock);
    int rc = build_map_locked(idx);
    pthread_mutex_unlock(&idx->map_lock);
    return rc;
}

int64_t cc_label_to_slot(const cc_index *idx, int64_t label) {
    if (label < 0) return -1;
    if (idx->labels_identity) {
        if (label >= idx->n_slots || cc_slot_removed(idx, label)) return -1;
        return label;
    }
    if (ensure_map(idx) != 0) return -1;
    return map_get(&idx->map, label);
}

/* ------------------------------------------------------------------ adding */

int cc_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c == 0) return 0;
            i++;
            continue;
        }
        int extra;
        unsigned min;
        if ((c & 0xe0) == 0xc0) extra = 1, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0) extra = 2, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0) extra = 3, min = 0x10000, c &= 0x07;
        else return 0;
        if (i + (size_t)extra >= len) return 0;
        for (int j = 1; j <= extra; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (p[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += (size_t)extra + 1;
    }
    return 1;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int check_new_ids(const cc_index *idx, int64_t n, const int64_t *ids) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] == INT64_MAX) { /* INT64_MAX: the next automatic id would overflow */
            cc_set_error("ids must be in 0..%lld; row %lld has %lld", (long long)(INT64_MAX - 1), (long long)i,
                         (long long)ids[i]);
            return -1;
        }
    int64_t *sorted = cc_malloc((size_t)n * sizeof(int64_t), "id check");
    if (!sorted) return -1;
    memcpy(sorted, ids, (size_t)n * sizeof(int64_t));
    qsort(sorted, (size_t)n, sizeof(int64_t), cmp_i64);
    for (int64_t i = 1; i < n; i++)
        if (sorted[i] == sorted[i - 1]) {
            cc_set_error("id %lld appears more than once in the vectors to add", (long long)sorted[i]);
            free(sorted);
            return -1;
        }
    free(sorted);
    for (int64_t i = 0; i < n; i++)
        if (cc_label_to_slot(idx, ids[i]) >= 0) {
            cc_set_error("id %lld (row %lld) is already in the index", (long long)ids[i], (long long)i);
            return -1;
        }
    return 0;
}

#define BITMAP_WORDS(n) (((size_t)(n) + 63) / 64)

/* Per-item arrays grow with the slots; texts/timestamps start when the first item has one. */
static int grow_item_arrays(cc_index *idx, int64_t new_n_slots, int need_text, int need_time) {
    if (idx->item_text.size || need_text) {
        size_t old = idx->item_text.size / 16;
        if (cc_buf_resize(&idx->item_text, (size_t)new_n_slots * 16, "item texts") != 0) return -1;
        uint64_t *e = (uint64_t *)idx->item_text.ptr;
        for (size_t s = old; s < (size_t)new_n_slots; s++) e[2 * s] = UINT64_MAX, e[2 * s + 1] = 0;
    }
    if (idx->item_time.size || need_time) {
        size_t old = idx->item_time.size / 8;
        if (cc_buf_resize(&idx->item_time, (size_t)new_n_slots * 8, "item timestamps") != 0) return -1;
        int64_t *t = (int64_t *)idx->item_time.ptr;
        for (size_t s = old; s < (size_t)new_n_slots; s++) t[s] = CC_INDEX_NO_TIMESTAMP;
    }
    return 0;
}

static int set_item_text(cc_index *idx, int64_t slot, const char *text) {
    uint64_t *e = (uint64_t *)idx->item_text.ptr;
    if (!text) {
        e[2 * slot] = UINT64_MAX;
        e[2 * slot + 1] = 0;
        return 0;
    }
    size_t len = strlen(text), off = idx->text_pool.size;
    if (cc_buf_append(&idx->text_pool, text, len + 1, "item text pool") != 0) return -1;
    e[2 * slot] = off;
    e[2 * slot + 1] = len;
    return 0;
}

int cc_index_add_items(cc_index *idx, int64_t n, const float *x, const int64_t *ids, const char *const *texts,
                       const int64_t *timestamps) {
    if (n < 0 || (n > 0 && !x)) {
        cc_set_error("index add: bad arguments (n = %lld)", (long long)n);
        return -1;
    }
    if (n == 0) return 0;
    if (!idx->trained) {
        cc_set_error("index %s is not trained: train it before adding vectors", idx->desc);
        return -1;
    }
    if (cc_check_finite(x, n, idx->dim, "vectors to add") != 0) return -1;
    if (idx->n_slots + (n > idx->n_removed ? n - idx->n_removed : 0) > CC_INDEX_MAX_SLOTS) {
        cc_set_error("index add: too many vectors (the limit is %lld)", (long long)CC_INDEX_MAX_SLOTS);
        return -1;
    }
    if (ids && check_new_ids(idx, n, ids) != 0) return -1;
    if (!ids && idx->next_id > INT64_MAX - n) {
        cc_set_error("index add: %lld automatic ids after id %lld would pass the largest id %lld; give --ids",
                     (long long)n, (long long)(idx->next_id - 1), (long long)(INT64_MAX - 1));
        return -1;
    }
    int need_text = 0, need_time = timestamps != NULL;
    if (texts)
        for (int64_t i = 0; i < n; i++) {
            if (!texts[i]) continue;
            need_text = 1;
            size_t len = strlen(texts[i]);
            if (!cc_utf8_valid(texts[i], len)) {
                cc_set_error("item text of row %lld is not valid UTF-8", (long long)i);
                return -1;
            }
        }

    int64_t *slots = cc_malloc((size_t)n * sizeof(int64_t), "slots");
    int64_t *labels = cc_malloc((size_t)n * sizeof(int64_t), "labels");
    int rc = -1;
    if (!slots || !labels) goto done;
    /* removed slots first (lowest first), then new ones */
    int64_t reused = 0;
    if (idx->n_removed > 0) {
        const uint64_t *w = (const uint64_t *)idx->removed.ptr;
        for (size_t wi = 0; wi < BITMAP_WORDS(idx->n_slots) && reused < n; wi++) {
            uint64_t bits = w[wi];
            while (bits && reused < n) {
                int b = __builtin_ctzll(bits);
                bits &= bits - 1;
                slots[reused++] = (int64_t)wi * 64 + b;
            }
        }
    }
    int64_t new_n_slots = idx->n_slots;
    for (int64_t i = reused; i < n; i++) slots[i] = new_n_slots++;
    int identity = idx->labels_identity;
    int64_t max_label = idx->next_id - 1;
    for (int64_t i = 0; i < n; i++) {
        labels[i] = ids ? ids[i] : idx->next_id + i;
        if (labels[i] != slots[i]) identity = 0;
        if (labels[i] > max_label) max_label = labels[i];
    }

    /* common arrays first, so that the type add is the last step that can fail */
    if (!identity && idx->kind != CC_KIND_HNSW) {
        if (cc_buf_resize(&idx->labels, (size_t)new_n_slots * 8, "labels") != 0) goto done;
        int64_t *l = (int64_t *)idx->labels.ptr;
        if (idx->labels_identity)
            for (int64_t s = 0; s < idx->n_slots; s++) l[s] = s;
    }
    if (idx->removed.size && cc_buf_resize(&idx->removed, BITMAP_WORDS(new_n_slots) * 8, "removed flags") != 0)
        goto done;
    if (grow_item_arrays(idx, new_n_slots, need_text, need_time) != 0) goto done;

    switch (idx->kind) {
    case CC_KIND_FLAT: rc = cc_flat_add(idx, n, x, slots, new_n_slots); break;
    case CC_KIND_IVF: rc = cc_ivf_add(idx, n, x, slots, new_n_slots); break;
    case CC_KIND_HNSW: rc = cc_hnsw_add(idx, n, x, slots, labels, new_n_slots); break;
    }
    if (rc != 0) goto done;

    /* commit */
    if (!identity && idx->kind != CC_KIND_HNSW) {
        int64_t *l = (int64_t *)idx->labels.ptr;
        for (int64_t i = 0; i < n; i++) l[slots[i]] = labels[i];
    }
    idx->labels_identity = identity;
    if (reused) {
        uint64_t *w = (uint64_t *)idx->removed.ptr;
        for (int64_t i = 0; i < reused; i++) w[slots[i] >> 6] &= ~(1ull << (slots[i] & 63));
        idx->n_removed -= reused;
    }
    idx->n_slots = new_n_slots;
    idx->n_live += n;
    idx->next_id = max_label + 1;
    if (idx->map_valid) {
        if (identity) idx->map_valid = 0;
        else
            for (int64_t i = 0; i < n; i++)
                if (map_put(&idx->map, labels[i], slots[i]) != 0) {
                    idx->map_valid = 0; /* rebuilt on next use */
                    break;
                }
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx->item_text.size && set_item_text(idx, slots[i], texts ? texts[i] : NULL) != 0) {
            rc = -1; /* vectors are in; only a text failed (out of memory) */
            break;
        }
        if (idx->item_time.size)
            ((int64_t *)idx->item_time.ptr)[slots[i]] = timestamps ? timestamps[i] : CC_INDEX_NO_TIMESTAMP;
    }
done:
    free(slots);
    free(labels);
    return rc;
}

int cc_index_add(cc_index *idx, int64_t n, const float *x) { return cc_index_add_items(idx, n, x, NULL, NULL, NULL); }

int cc_index_add_with_ids(cc_index *idx, int64_t n, const float *x, const int64_t *ids) {
    if (!ids && n > 0) {
        cc_set_error("index add: ids missing");
        return -1;
    }
    return cc_index_add_items(idx, n, x, ids, NULL, NULL);
}

int cc_index_train(cc_index *idx, int64_t n, const float *x) {
    if (n < 0 || (n > 0 && !x)) {
        cc_set_error("index train: bad arguments");
        return -1;
    }
    if (idx->kind != CC_KIND_IVF) return 0; /* Flat and HNSW need no training */
    if (idx->n_slots > 0) {
        cc_set_error("index %s already holds vectors; train before adding", idx->desc);
        return -1;
    }
    if (cc_check_finite(x, n, idx->dim, "training vectors") != 0) return -1;
    if (cc_ivf_train(idx, n, x) != 0) return -1;
    idx->trained = 1;
    return 0;
}

/* ------------------------------------------------------------------ removing */

int64_t cc_index_remove(cc_index *idx, int64_t n, const int64_t *ids) {
    if (n < 0 || (n > 0 && !ids)) {
        cc_set_error("index remove: bad arguments");
        return -1;
    }
    if (n == 0 || idx->n_live == 0) return 0;
    uint64_t *doomed = cc_calloc(BITMAP_WORDS(idx->n_slots), 8, "removal flags");
    if (!doomed) return -1;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = cc_label_to_slot(idx, ids[i]);
        if (s < 0 || ((doomed[s >> 6] >> (s & 63)) & 1)) continue;
        doomed[s >> 6] |= 1ull << (s & 63);
        count++;
    }
    if (count == 0) {
        free(doomed);
        return 0;
    }
    if (!idx->removed.size && cc_buf_resize(&idx->removed, BITMAP_WORDS(idx->n_slots) * 8, "removed flags") != 0) {
        free(doomed);
        return -1;
    }
    if (idx->kind == CC_KIND_IVF && cc_ivf_remove_slots(idx, doomed) != 0) {
        free(doomed);
        return -1;
    }
    uint64_t *w = (uint64_t *)idx->removed.ptr;
    for (size_t wi = 0; wi < BITMAP_WORDS(idx->n_slots); wi++) {
        uint64_t bits = doomed[wi];
        w[wi] |= bits;
        while (bits) {
            int64_t s = (int64_t)wi * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            if (idx->map_valid) map_del(&idx->map, cc_slot_label(idx, s));
            if (idx->item_text.size) set_item_text(idx, s, NULL);
            if (idx->item_time.size) ((int64_t *)idx->item_time.ptr)[s] = CC_INDEX_NO_TIMESTAMP;
        }
    }
    idx->n_removed += count;
    idx->n_live -= count;
    free(doomed);
    return count;
}

/* ------------------------------------------------------------------ searching */

#define MAX_RERANK 1024              /* largest re-ranking factor */
#define MAX_EF_SEARCH (1 << 20)      /* largest efSearch */
#define SMALL_FILTER_EXACT 4096      /* filters allowing at most this many ids: exact scan of those */

int cc_index_has_exact_vectors(const cc_index *idx) {
    return idx->kind == CC_KIND_FLAT || idx->kind == CC_KIND_HNSW || (idx->ivf && idx->vectors.size);
}

const float *cc_index_slot_vector(const cc_index *idx, int64_t slot) {
    if (idx->kind == CC_KIND_HNSW) return cc_hnsw_vector(idx, slot);
    return (const float *)idx->vectors.ptr + slot * idx->dim;
}

static int64_t filter_popcount(const cc_id_filter *f) {
    int64_t count = 0;
    size_t words = BITMAP_WORDS(f->n_bits);
    for (size_t i = 0; i < words; i++) {
        uint64_t w = f->words[i];
        if (i == words - 1 && (f->n_bits & 63)) w &= (1ull << (f->n_bits & 63)) - 1;
        count += __builtin_popcountll(w);
    }
    return count;
}

/* Exact scan over the ids a small filter allows. */
static int search_small_filter(const cc_index *idx, int64_t nq, const float *q, int k, const cc_id_filter *f,
                               int64_t n_allowed, int64_t *out_slots, float *out_sims) {
    int64_t *cand = cc_malloc((size_t)(n_allowed ? n_allowed : 1) * sizeof(int64_t), "filter candidates");
    if (!cand) return -1;
    int64_t n_cand = 0;
    size_t words = BITMAP_WORDS(f->n_bits);
    for (size_t wi = 0; wi < words; wi++) {
        uint64_t bits = f->words[wi];
        while (bits) {
            int64_t label = (int64_t)wi * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            if (label >= f->n_bits) break;
            int64_t s = cc_label_to_slot(idx, label);
            if (s >= 0 && n_cand < n_allowed) cand[n_cand++] = s;
        }
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < nq; i++)
        cc_rerank_exact(idx, q + i * idx->dim, cand, (int)n_cand, k, out_slots + i * k, out_sims + i * k);
    free(cand);
    return 0;
}

int cc_index_search_ex(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_params *params,
                       int64_t *out_ids, float *out_scores) {
    if (nq < 0 || (nq > 0 && (!q || !out_ids))) {
        cc_set_error("index search: bad arguments");
        return -1;
    }
    if (nq == 0) return 0;
    if (k < 1) {
        cc_set_error("index search: k must be at least 1, got %d", k);
        return -1;
    }
    if (!idx->trained) {
        cc_set_error("index %s is not trained", idx->desc);
        return -1;
    }
    if (idx->n_live == 0) {
        cc_set_error("index search: the index is empty");
        return -1;
    }
    if (k > idx->n_live) {
        cc_set_error("index search: k = %d is larger than the number of vectors in the index (%lld)", k,
                     (long long)idx->n_live);
        return -1;
    }
    if (cc_check_finite(q, nq, idx->dim, "queries") != 0) return -1;
    cc_search_ctx ctx;
    ctx.filter = params ? params->filter : NULL;
    ctx.nprobe = params && params->nprobe > 0 ? params->nprobe : idx->nprobe;
    if (idx->ivf && ctx.nprobe > cc_ivf_nlist(idx)) ctx.nprobe = cc_ivf_nlist(idx);
    ctx.ef_search = params && params->ef_search > 0 ? params->ef_search : idx->ef_search;
    if (ctx.ef_search > MAX_EF_SEARCH) ctx.ef_search = MAX_EF_SEARCH;
    if (ctx.ef_search < k) ctx.ef_search = k;
    ctx.rerank = params && params->rerank > 0 ? params->rerank : idx->rerank;
    if (ctx.rerank > MAX_RERANK) ctx.rerank = MAX_RERANK;
    if (ctx.filter && (ctx.filter->n_bits < 0 || (ctx.filter->n_bits > 0 && !ctx.filter->words))) {
        cc_set_error("index search: bad filter");
        return -1;
    }

    float *sims = out_scores ? out_scores : cc_malloc((size_t)nq * (size_t)k * sizeof(float), "search scores");
    if (!sims) return -1;
    int64_t *slots = out_ids;
    int rc;
    int64_t n_allowed = ctx.filter ? filter_popcount(ctx.filter) : 0;
    if (ctx.filter && n_allowed <= SMALL_FILTER_EXACT && cc_index_has_exact_vectors(idx)) {
        rc = search_small_filter(idx, nq, q, k, ctx.filter, n_allowed, slots, sims);
    } else {
        switch (idx->kind) {
        case CC_KIND_FLAT: rc = cc_flat_search(idx, nq, q, k, &ctx, slots, sims); break;
        case CC_KIND_IVF: rc = cc_ivf_search(idx, nq, q, k, &ctx, slots, sims); break;
        default: rc = cc_hnsw_search(idx, nq, q, k, &ctx, slots, sims); break;
        }
    }
    if (rc == 0) {
        for (int64_t i = 0; i < nq * k; i++) {
            if (slots[i] < 0) {
                slots[i] = -1;
                sims[i] = -INFINITY;
            } else {
                slots[i] = cc_slot_label(idx, slots[i]);
            }
            sims[i] = cc_sim_to_score(idx, sims[i]);
        }
    }
    if (!out_scores) free(sims);
    return rc;
}

int cc_index_search(const cc_index *idx, int64_t nq, const float *q, int k, int64_t *out_ids, float *out_scores) {
    return cc_index_search_ex(idx, nq, q, k, NULL, out_ids, out_scores);
}

int cc_index_search_filtered(const cc_index *idx, int64_t nq, const float *q, int k, const cc_id_filter *allow,
                             int64_t *out_ids, float *out_scores) {
    cc_search_params params = {0};
    params.filter = allow;
    return cc_index_search_ex(idx, nq, q, k, &params, out_ids, out_scores);
}

int cc_index_reconstruct(const cc_index *idx, int64_t id, float *out) {
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) {
        cc_set_error("index: id %lld is not in the index", (long long)id);
        return -1;
    }
    if (idx->kind == CC_KIND_IVF && !idx->vectors.size) return cc_ivf_reconstruct_slot(idx, slot, out);
    memcpy(out, cc_index_slot_vector(idx, slot), (size_t)idx->dim * sizeof(float));
    return 0;
}

/* ------------------------------------------------------------------ parameters */

static void mirror_param(cc_index *idx, const char *key, int64_t value) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)value);
    cc_index_kv_set_raw(idx, key, text);
}

int cc_index_set_param(cc_index *idx, const char *name, int64_t value) {
    if (!strcmp(name, "nprobe")) {
        if (!idx->ivf) goto not_applicable;
        if (value < 1) goto bad_value;
        int clamped = value > cc_ivf_nlist(idx);
        idx->nprobe = clamped ? cc_ivf_nlist(idx) : (int)value;
        mirror_param(idx, "search.nprobe", idx->nprobe);
        return clamped;
    }
    if (!strcmp(name, "efSearch")) {
        if (idx->kind != CC_KIND_HNSW) goto not_applicable;
        if (value < 1 || value > MAX_EF_SEARCH) goto bad_value;
        idx->ef_search = (int)value;
        mirror_param(idx, "search.efSearch", value);
        return 0;
    }
    if (!strcmp(name, "rerank")) {
        if (!idx->ivf || cc_ivf_get_param(idx, "refine") != 1) goto not_applicable;
        if (value < 1 || value > MAX_RERANK) goto bad_value;
        idx->rerank = (int)value;
        mirror_param(idx, "search.rerank", value);
        return 0;
    }
    if (!strcmp(name, "efConstruction")) {
        if (idx->kind != CC_KIND_HNSW) goto not_applicable;
        if (value < 1 || value > MAX_EF_SEARCH) goto bad_value;
        idx->ef_construction = (int)value;
        return 0;
    }
    if (!strcmp(name, "seed")) {
        if (value < 0) goto bad_value;
        idx->seed = (uint64_t)value;
        return 0;
    }
    if (!strcmp(name, "nlist") || !strcmp(name, "M") || !strcmp(name, "nbits")) {
        cc_set_error("index parameter %s is fixed by the index type (%s)", name, idx->desc);
        return -1;
    }
    cc_set_error("unknown index parameter '%s' (nprobe, efSearch, rerank, efConstruction, seed)", name);
    return -1;
not_applicable:
    cc_set_error("index parameter %s does not apply to %s", name, idx->desc);
    return -1;
bad_value:
    cc_set_error("index parameter %s: bad value %lld", name, (long long)value);
    return -1;
}

int64_t cc_index_get_param(const cc_index *idx, const char *name) {
    if (!strcmp(name, "seed")) return (int64_t)idx->seed;
    if (idx->ivf) {
        if (!strcmp(name, "nprobe")) return idx->nprobe;
        if (!strcmp(name, "rerank")) return cc_ivf_get_param(idx, "refine") == 1 ? idx->rerank : -1;
        return cc_ivf_get_param(idx, name);
    }
    if (idx->kind == CC_KIND_HNSW) {
        if (!strcmp(name, "efSearch")) return idx->ef_search;
        if (!strcmp(name, "efConstruction")) return idx->ef_construction;
        return cc_hnsw_get_param(idx, name);
    }
    return -1;
}

/* ------------------------------------------------------------------ key/value metadata */

static int kv_find(const cc_index *idx, const char *key) {
    for (int i = 0; i < idx->n_kv; i++)
        if (!strcmp(idx->kv_keys[i], key)) return i;
    return -1;
}

int cc_index_kv_set_raw(cc_index *idx, const char *key, const char *value) {
    int i = kv_find(idx, key);
    if (!value) {
        if (i < 0) return 0;
        free(idx->kv_keys[i]);
        free(idx->kv_values[i]);
        memmove(idx->kv_keys + i, idx->kv_keys + i + 1, (size_t)(idx->n_kv - i - 1) * sizeof(char *));
        memmove(idx->kv_values + i, idx->kv_values + i + 1, (size_t)(idx->n_kv - i - 1) * sizeof(char *));
        idx->n_kv--;
        return 0;
    }
    char *copy = cc_strdup(value);
    if (!copy) return -1;
    if (i >= 0) {
        free(idx->kv_values[i]);
        idx->kv_values[i] = copy;
        return 0;
    }
    if (idx->n_kv >= MAX_KV_ENTRIES) {
        free(copy);
        cc_set_error("index metadata: too many keys (limit %d)", MAX_KV_ENTRIES);
        return -1;
    }
    char *key_copy = cc_strdup(key);
    char **keys = cc_realloc(idx->kv_keys, (size_t)(idx->n_kv + 1) * sizeof(char *), "metadata keys");
    if (keys) idx->kv_keys = keys;
    char **values = keys ? cc_realloc(idx->kv_values, (size_t)(idx->n_kv + 1) * sizeof(char *), "metadata values") : NULL;
    if (values) idx->kv_values = values;
    if (!key_copy || !keys || !values) {
        free(copy);
        free(key_copy);
        return -1;
    }
    idx->kv_keys[idx->n_kv] = key_copy;
    idx->kv_values[idx->n_kv] = copy;
    idx->n_kv++;
    return 0;
}

int cc_index_set_meta(cc_index *idx, const char *key, const char *value) {
    if (!key || !*key || strlen(key) > MAX_KV_TEXT || !cc_utf8_valid(key, strlen(key))) {
        cc_set_error("index metadata: keys must be non-empty UTF-8 of at most %d bytes", MAX_KV_TEXT);
        return -1;
    }
    if (value && (strlen(value) > MAX_KV_TEXT || !cc_utf8_valid(value, strlen(value)))) {
        cc_set_error("index metadata '%s': values must be UTF-8 of at most %d bytes", key, MAX_KV_TEXT);
        return -1;
    }
    if (!strncmp(key, "search.", 7)) {
        const char *param = key + 7;
        if (strcmp(param, "nprobe") && strcmp(param, "efSearch") && strcmp(param, "rerank")) {
            cc_set_error("index metadata: '%s' is reserved (search.nprobe, search.efSearch, search.rerank)", key);
            return -1;
        }
        if (!value) return cc_index_kv_set_raw(idx, key, NULL);
        int64_t v;
        if (cc_parse_int64(value, 1, INT32_MAX, &v) != 0) {
            cc_set_error("index metadata '%s': expected a positive integer, got '%s'", key, value);
            return -1;
        }
        return cc_index_set_param(idx, param, v) < 0 ? -1 : 0;
    }
    return cc_index_kv_set_raw(idx, key, value);
}

const char *cc_index_get_meta(const cc_index *idx, const char *key) {
    int i = kv_find(idx, key);
    return i < 0 ? NULL : idx->kv_values[i];
}

int cc_index_meta_count(const cc_index *idx) { return idx->n_kv; }

int cc_index_meta_at(const cc_index *idx, int i, const char **key, const char **value) {
    if (i < 0 || i >= idx->n_kv) return -1;
    *key = idx->kv_keys[i];
    *value = idx->kv_values[i];
    return 0;
}

int cc_index_has_item_texts(const cc_index *idx) { return idx->item_text.size != 0; }

const char *cc_index_item_text(const cc_index *idx, int64_t id) {
    if (!idx->item_text.size) return NULL;
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) return NULL;
    const uint64_t *e = (const uint64_t *)idx->item_text.ptr;
    if (e[2 * slot] == UINT64_MAX) return NULL;
    return (const char *)idx->text_pool.ptr + e[2 * slot];
}

int cc_index_item_timestamp(const cc_index *idx, int64_t id, int64_t *out) {
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) return -1;
    if (!idx->item_time.size) return 0;
    int64_t t = ((const int64_t *)idx->item_time.ptr)[slot];
    if (t == CC_INDEX_NO_TIMESTAMP) return 0;
    *out = t;
    return 1;
}
