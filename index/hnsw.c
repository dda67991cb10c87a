/* hnsw.c — hierarchical navigable small-world graph ("HNSW<M>", "HNSW<M>,Flat").
 *
 * Memory layout (as hnswlib): one fixed-size record per slot at level 0,
 *   [ vector: dim float32 | count: uint32 | links: M0 = 2M uint32 | pad | label: int64 | pad to 64 ]
 * so a node's neighbours sit next to its vector and records are 64-byte aligned (the vector is
 * at offset 0: aligned loads, and dim*4 bytes touch exactly dim/16 cache lines). Upper levels are
 * rarer (a node is on level l >= 1 with probability M^-l): for a node of level L, L blocks of
 * [count: uint32 | links: M uint32] in a pool, nodes in slot order; levels are one byte per slot.
 *
 * Search: greedy descent through the upper levels, then the ef-bounded best-first search at
 * level 0. Visited nodes are marked with a 16-bit tag per slot (the tag advances per query, the
 * array is cleared only when it wraps). The unvisited neighbours of a node are gathered first
 * and their vectors prefetched, then scored four at a time (ip4: four independent streams).
 * Removed slots (tombstones) and filtered-out ids are traversed but not returned; the search then
 * keeps going until it holds ef acceptable results, as hnswlib does.
 *
 * Build: levels are drawn from the index seed in insertion order, so the graph is deterministic
 * at one thread. Insertion follows hnswlib: ef_construction search per level, the neighbour
 * selection heuristic (keep a candidate unless it is closer to an already kept one than to the
 * new node), M links per level and up to 2M at level 0, with reverse links pruned by the same
 * heuristic. Threads insert in parallel with a spin lock per node; a removed slot is reused by a
 * later add, keeping its level, its links rebuilt (stale incoming links merely point to the new
 * vector, which is harmless for search correctness).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/progress.h"
#include "engine/util.h"
#include "index/distance.h"
#include "index/internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define HNSW_MAX_LEVEL 30           /* levels beyond this are clamped (probability M^-30) */
#define HNSW_PREFETCH_LINES 4       /* cache lines of each neighbour's vector prefetched */
#define HNSW_PROGRESS_MIN 20000     /* adds of at least this many vectors show progress */
#define HNSW_MAX_VISITED_POOL 256   /* visited arrays kept for reuse */

typedef struct hnode {
    float sim;
    uint32_t id;
} hnode;

typedef struct visited {
    uint16_t *marks;
    int64_t n;
    uint16_t tag;
} visited;

struct cc_hnsw {
    int M, M0;
    size_t rec_size, links_off, label_off;
    int64_t n_nodes;       /* records written (== idx->n_slots outside add) */
    int64_t entry;         /* -1 when empty */
    int max_level;
    double level_mult;
    cc_buf level0;
    cc_buf levels;         /* uint8 per slot */
    cc_buf upper;          /* uint32 pool */
    uint64_t *upper_off;   /* per slot, in uint32 units; derived */
    int64_t upper_off_cap;
    atomic_flag *locks;    /* per node, during add */
    atomic_flag global_lock;
    pthread_mutex_t pool_lock;
    visited **pool;
    int pool_n;
};

/* ------------------------------------------------------------------ accessors */

static inline struct cc_hnsw *hnsw_of(const cc_index *idx) { return (struct cc_hnsw *)idx->impl; }

static inline const float *node_vec(const struct cc_hnsw *h, int64_t s) {
    return (const float *)(h->level0.ptr + (size_t)s * h->rec_size);
}
static inline uint32_t *node_links(const struct cc_hnsw *h, int64_t s, int level) {
    if (level == 0) return (uint32_t *)(h->level0.ptr + (size_t)s * h->rec_size + h->links_off);
    return (uint32_t *)h->upper.ptr + h->upper_off[s] + (size_t)(level - 1) * (size_t)(1 + h->M);
}
static inline int node_level(const struct cc_hnsw *h, int64_t s) { return h->levels.ptr[s]; }

static int64_t hnsw_slot_label(const cc_index *idx, int64_t slot) {
    const struct cc_hnsw *h = hnsw_of(idx);
    int64_t label;
    memcpy(&label, h->level0.ptr + (size_t)slot * h->rec_size + h->label_off, 8);
    return label;
}

static const float *hnsw_slot_vector(const cc_index *idx, int64_t slot) { return node_vec(hnsw_of(idx), slot); }

static int64_t hnsw_memory(const cc_index *idx) {
    const struct cc_hnsw *h = hnsw_of(idx);
    return (int64_t)(h->level0.size + h->levels.size + h->upper.size) + idx->n_slots * 8;
}

static int64_t hnsw_get_param(const cc_index *idx, const char *name) {
    if (!strcmp(name, "M")) return hnsw_of(idx)->M;
    if (!strcmp(name, "efSearch")) return idx->ef_search;
    if (!strcmp(name, "efConstruction")) return idx->ef_construction;
    return -1;
}

static inline void lock_node(struct cc_hnsw *h, int64_t s) {
    if (!h->locks) return;
    while (atomic_flag_test_and_set_explicit(&h->locks[s], memory_order_acquire)) __builtin_ia32_pause();
}
static inline void unlock_node(struct cc_hnsw *h, int64_t s) {
    if (h->locks) atomic_flag_clear_explicit(&h->locks[s], memory_order_release);
}

/* ------------------------------------------------------------------ lifetime */

static int hnsw_init(cc_index *idx, const cc_index_spec *spec) {
    int M = spec->hnsw_m;
    idx->exact_vectors = 1;
    struct cc_hnsw *h = cc_calloc(1, sizeof *h, "HNSW state");
    if (!h) return -1;
    idx->impl = h;
    h->M = M;
    h->M0 = 2 * M;
    size_t vec = (size_t)idx->dim * sizeof(float);
    h->links_off = vec;
    size_t after_links = vec + 4 + 4 * (size_t)h->M0;
    h->label_off = (after_links + 7) & ~(size_t)7;
    h->rec_size = (h->label_off + 8 + 63) & ~(size_t)63;
    h->entry = -1;
    h->max_level = -1;
    h->level_mult = 1.0 / log((double)M);
    atomic_flag_clear(&h->global_lock);
    pthread_mutex_init(&h->pool_lock, NULL);
    return 0;
}

static void hnsw_free(cc_index *idx) {
    struct cc_hnsw *h = hnsw_of(idx);
    if (!h) return;
    cc_buf_free(&h->level0);
    cc_buf_free(&h->levels);
    cc_buf_free(&h->upper);
    free(h->upper_off);
    free(h->locks);
    for (int i = 0; i < h->pool_n; i++) {
        free(h->pool[i]->marks);
        free(h->pool[i]);
    }
    free(h->pool);
    pthread_mutex_destroy(&h->pool_lock);
    free(h);
    idx->impl = NULL;
}

/* ------------------------------------------------------------------ visited marks */

static visited *visited_get(struct cc_hnsw *h, int64_t n) {
    visited *v = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->pool_n) v = h->pool[--h->pool_n];
    pthread_mutex_unlock(&h->pool_lock);
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v) return NULL;
    }
    if (v->n < n) {
        free(v->marks);
        v->marks = calloc((size_t)n, sizeof(uint16_t));
        v->n = v->marks ? n : 0;
        v->tag = 0;
        if (!v->marks) {
            free(v);
            return NULL;
        }
    }
    return v;
}

static void visited_put(struct cc_hnsw *h, visited *v) {
    if (!v) return;
    pthread_mutex_lock(&h->pool_lock);
    if (h->pool_n < HNSW_MAX_VISITED_POOL) {
        visited **grown = realloc(h->pool, (size_t)(h->pool_n + 1) * sizeof *grown);
        if (grown) {
            h->pool = grown;
            h->pool[h->pool_n++] = v;
            v = NULL;
        }
    }
    pthread_mutex_unlock(&h->pool_lock);
    if (v) {
        free(v->marks);
        free(v);
    }
}

static inline void visited_next(visited *v) {
    if (++v->tag == 0) {
        memset(v->marks, 0, (size_t)v->n * sizeof(uint16_t));
        v->tag = 1;
    }
}

/* ------------------------------------------------------------------ heaps of (sim, id) */

typedef struct hheap {
    hnode *a;
    int n, cap;
} hheap;

static int hheap_reserve(hheap *h, int cap) {
    if (cap <= h->cap) return 0;
    int new_cap = h->cap ? h->cap : 64;
    while (new_cap < cap) new_cap *= 2;
    hnode *a = realloc(h->a, (size_t)new_cap * sizeof(hnode));
    if (!a) return -1;
    h->a = a;
    h->cap = new_cap;
    return 0;
}

/* max-heap (best first) */
static inline void maxheap_push(hheap *h, float sim, uint32_t id) {
    int pos = h->n++;
    while (pos > 0) {
        int parent = (pos - 1) >> 1;
        if (h->a[parent].sim >= sim) break;
        h->a[pos] = h->a[parent];
        pos = parent;
    }
    h->a[pos].sim = sim;
    h->a[pos].id = id;
}
static inline void maxheap_pop(hheap *h) {
    hnode last = h->a[--h->n];
    int pos = 0, n = h->n;
    for (;;) {
        int child = 2 * pos + 1;
        if (child >= n) break;
        if (child + 1 < n && h->a[child + 1].sim > h->a[child].sim) child++;
        if (h->a[child].sim <= last.sim) break;
        h->a[pos] = h->a[child];
        pos = child;
    }
    if (n) h->a[pos] = last;
}
/* min-heap (worst first) */
static inline void minheap_push(hheap *h, float sim, uint32_t id) {
    int pos = h->n++;
    while (pos > 0) {
        int parent = (pos - 1) >> 1;
        if (h->a[parent].sim <= sim) break;
        h->a[pos] = h->a[parent];
        pos = parent;
    }
    h->a[pos].sim = sim;
    h->a[pos].id = id;
}
static inline void minheap_pop(hheap *h) {
    hnode last = h->a[--h->n];
    int pos = 0, n = h->n;
    for (;;) {
        int child = 2 * pos + 1;
        if (child >= n) break;
        if (child + 1 < n && h->a[child + 1].sim < h->a[child].sim) child++;
        if (h->a[child].sim >= last.sim) break;
        h->a[pos] = h->a[child];
        pos = child;
    }
    if (n) h->a[pos] = last;
}

/* ------------------------------------------------------------------ similarity */

typedef struct sim_ctx {
    const cc_dist_kernels *dk;
    int ip;
    size_t d;
} sim_ctx;

static inline float sim1(const sim_ctx *c, const float *a, const float *b) {
    return c->ip ? c->dk->ip(a, b, c->d) : -c->dk->l2sq(a, b, c->d);
}

static inline void sim4(const sim_ctx *c, const float *q, const float *x0, const float *x1, const float *x2,
                        const float *x3, float out[4]) {
    if (c->ip) {
        c->dk->ip4(q, x0, x1, x2, x3, c->d, out);
    } else {
        c->dk->l2sq4(q, x0, x1, x2, x3, c->d, out);
        out[0] = -out[0], out[1] = -out[1], out[2] = -out[2], out[3] = -out[3];
    }
}

static inline void prefetch_vec(const struct cc_hnsw *h, uint32_t id) {
    const char *p = (const char *)node_vec(h, id);
    for (int l = 0; l < HNSW_PREFETCH_LINES; l++) __builtin_prefetch(p + 64 * l);
}

/* ------------------------------------------------------------------ search one level */

typedef struct layer_search {
    const cc_index *idx;
    struct cc_hnsw *h;
    sim_ctx sc;
    visited *vis;
    hheap cand, res;
    uint32_t *batch;       /* unvisited neighbours of the node being expanded */
    int locked;            /* build: read links under the node lock */
    const cc_id_filter *filter;
    int check_ok;          /* results exclude removed / filtered slots */
    int64_t n_nodes;       /* links at or beyond this are ignored (corrupt or not yet written) */
} layer_search;

/* Copies the links of s at level into out (count returned), clamped and bounds-checked. */
static inline int read_links(layer_search *ls, int64_t s, int level, uint32_t *out) {
    struct cc_hnsw *h = ls->h;
    int max = level == 0 ? h->M0 : h->M;
    if (level > node_level(h, s)) return 0; /* only in a damaged file: no links there */
    if (ls->locked) lock_node(h, s);
    const uint32_t *l = node_links(h, s, level);
    int n = l[0] > (uint32_t)max ? max : (int)l[0];
    memcpy(out, l + 1, (size_t)n * sizeof(uint32_t));
    if (ls->locked) unlock_node(h, s);
    return n;
}

/* Greedy walk to the best node of a level (ef = 1). */
static void greedy_level(layer_search *ls, const float *q, int level, uint32_t *cur, float *cur_sim) {
    uint32_t links[512];
    for (int changed = 1; changed;) {
        changed = 0;
        int n = read_links(ls, *cur, level, links);
        for (int i = 0; i < n; i++) {
            uint32_t nb = links[i];
            if ((int64_t)nb >= ls->n_nodes) continue;
            float s = sim1(&ls->sc, q, node_vec(ls->h, nb));
            if (s > *cur_sim) {
                *cur_sim = s;
                *cur = nb;
                changed = 1;
            }
        }
    }
}

/* Best-first search of one level from ep, keeping the ef best acceptable nodes in ls->res (a
 * min-heap). Returns -1 only when out of memory. */
static int search_layer(layer_search *ls, const float *q, uint32_t ep, float ep_sim, int level, int ef) {
    struct cc_hnsw *h = ls->h;
    visited *vis = ls->vis;
    uint16_t tag = vis->tag;
    ls->cand.n = ls->res.n = 0;
    if (hheap_reserve(&ls->res, ef + 1) != 0 || hheap_reserve(&ls->cand, ef + 1) != 0) return -1;
    vis->marks[ep] = tag;
    maxheap_push(&ls->cand, ep_sim, ep);
    if (!ls->check_ok || cc_slot_ok(ls->idx, ls->filter, ep)) minheap_push(&ls->res, ep_sim, ep);
    float lower = ls->res.n ? ls->res.a[0].sim : -INFINITY;
    uint32_t *batch = ls->batch;
    while (ls->cand.n) {
        hnode c = ls->cand.a[0];
        if (c.sim < lower && (ls->res.n >= ef || !ls->check_ok)) break;
        maxheap_pop(&ls->cand);
        uint32_t links[512];
        int n = read_links(ls, c.id, level, links);
        int nb = 0;
        for (int i = 0; i < n; i++) {
            uint32_t id = links[i];
            if ((int64_t)id >= ls->n_nodes || vis->marks[id] == tag) continue;
            vis->marks[id] = tag;
            prefetch_vec(h, id);
            batch[nb++] = id;
        }
        if (hheap_reserve(&ls->cand, ls->cand.n + nb + 1) != 0) return -1;
        for (int i = 0; i < nb; i += 4) {
            float s[4];
            int cnt = nb - i < 4 ? nb - i : 4;
            const float *x[4];
            for (int j = 0; j < 4; j++) x[j] = node_vec(h, batch[i + (j < cnt ? j : 0)]);
            if (cnt == 4 || cnt == 3) sim4(&ls->sc, q, x[0], x[1], x[2], x[3], s);
            else
                for (int j = 0; j < cnt; j++) s[j] = sim1(&ls->sc, q, x[j]);
            for (int j = 0; j < cnt; j++) {
                if (ls->res.n < ef || s[j] > lower) {
                    uint32_t id = batch[i + j];
                    maxheap_push(&ls->cand, s[j], id);
                    if (!ls->check_ok || cc_slot_ok(ls->idx, ls->filter, id)) {
                        minheap_push(&ls->res, s[j], id);
                        if (ls->res.n > ef) minheap_pop(&ls->res);
                        lower = ls->res.a[0].sim;
                    }
                }
            }
        }
    }
    return 0;
}

static int layer_search_init(layer_search *ls, const cc_index *idx, int64_t n_nodes) {
    memset(ls, 0, sizeof *ls);
    ls->idx = idx;
    ls->h = hnsw_of(idx);
    ls->sc.dk = cc_dist();
    ls->sc.ip = idx->metric == CC_METRIC_IP;
    ls->sc.d = (size_t)idx->dim;
    ls->n_nodes = n_nodes;
    ls->batch = malloc(sizeof(uint32_t) * 512);
    ls->vis = visited_get(hnsw_of(idx), n_nodes > 0 ? n_nodes : 1);
    return ls->batch && ls->vis ? 0 : -1;
}

static void layer_search_done(layer_search *ls) {
    free(ls->batch);
    free(ls->cand.a);
    free(ls->res.a);
    visited_put(ls->h, ls->vis);
}

/* ------------------------------------------------------------------ search */

static void search_query(layer_search *ls, const float *q, int k, int ef, int64_t *out_slots, float *out_sims) {
    struct cc_hnsw *h = ls->h;
    int n_out = 0;
    if (h->entry >= 0) {
        uint32_t cur = (uint32_t)h->entry;
        float cur_sim = sim1(&ls->sc, q, node_vec(h, cur));
        visited_next(ls->vis);
        for (int level = h->max_level; level > 0; level--) greedy_level(ls, q, level, &cur, &cur_sim);
        if (search_layer(ls, q, cur, cur_sim, 0, ef) == 0) {
            /* pop the min-heap: worst first; keep the best k */
            while (ls->res.n > k) minheap_pop(&ls->res);
            n_out = ls->res.n;
            for (int i = n_out - 1; i >= 0; i--) {
                out_sims[i] = ls->res.a[0].sim;
                out_slots[i] = ls->res.a[0].id;
                minheap_pop(&ls->res);
            }
        }
    }
    for (int i = n_out; i < k; i++) {
        out_sims[i] = -INFINITY;
        out_slots[i] = -1;
    }
}

static int hnsw_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                       int64_t *out_slots, float *out_sims) {
    int failed = 0;
    int has_removed = idx->n_removed > 0;
#pragma omp parallel reduction(| : failed)
    {
        layer_search ls;
        if (layer_search_init(&ls, idx, idx->n_slots) != 0) failed = 1;
        ls.filter = ctx->filter;
        ls.check_ok = has_removed || ctx->filter != NULL;
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < nq; i++) {
            if (failed) continue;
            search_query(&ls, q + i * idx->dim, k, ctx->ef_search, out_slots + i * k, out_sims + i * k);
        }
        layer_search_done(&ls);
    }
    if (failed) {
        cc_set_error("HNSW search: out of memory");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ build */

/* hnswlib's neighbour selection: candidates (sorted best first) are kept unless one already kept
 * is more similar to them than the base is; at most max_links. Returns the count kept. */
static int select_neighbours(const sim_ctx *sc, const struct cc_hnsw *h, hnode *cands, int n, int max_links) {
    if (n < max_links) return n;
    int kept = 0;
    for (int i = 0; i < n && kept < max_links; i++) {
        const float *v = node_vec(h, cands[i].id);
        int good = 1;
        for (int j = 0; j < kept && good; j += 4) {
            int cnt = kept - j < 4 ? kept - j : 4;
            float s[4];
            if (cnt == 4) {
                sim4(sc, v, node_vec(h, cands[j].id), node_vec(h, cands[j + 1].id), node_vec(h, cands[j + 2].id),
                     node_vec(h, cands[j + 3].id), s);
            } else {
                for (int t = 0; t < cnt; t++) s[t] = sim1(sc, v, node_vec(h, cands[j + t].id));
            }
            for (int t = 0; t < cnt; t++)
                if (s[t] > cands[i].sim) good = 0;
        }
        if (good) cands[kept++] = cands[i];
    }
    return kept;
}

static int cmp_hnode_desc(const void *a, const void *b) {
    float x = ((const hnode *)a)->sim, y = ((const hnode *)b)->sim;
    if (x != y) return x > y ? -1 : 1;
    uint32_t i = ((const hnode *)a)->id, j = ((const hnode *)b)->id;
    return (i > j) - (i < j);
}

/* Adds link nb -> s at level (pruning nb's list with the heuristic when full). */
static void add_reverse_link(layer_search *ls, uint32_t nb, uint32_t s, float sim_s, int level) {
    struct cc_hnsw *h = ls->h;
    int max = level == 0 ? h->M0 : h->M;
    if (level > node_level(h, nb)) return; /* only in a damaged file */
    lock_node(h, nb);
    uint32_t *l = node_links(h, nb, level);
    int n = l[0] > (uint32_t)max ? max : (int)l[0];
    for (int i = 0; i < n; i++)
        if (l[i + 1] == s) {
            unlock_node(h, nb);
            return;
        }
    if (n < max) {
        l[n + 1] = s;
        l[0] = (uint32_t)(n + 1);
    } else {
        hnode cands[513];
        const float *v = node_vec(h, nb);
        cands[0].sim = sim_s;
        cands[0].id = s;
        int nc = 1;
        for (int i = 0; i < n; i++) {
            if ((int64_t)l[i + 1] >= ls->n_nodes) continue; /* only in a damaged file */
            cands[nc].id = l[i + 1];
            cands[nc++].sim = sim1(&ls->sc, v, node_vec(h, l[i + 1]));
        }
        qsort(cands, (size_t)nc, sizeof(hnode), cmp_hnode_desc);
        int kept = select_neighbours(&ls->sc, h, cands, nc, max);
        for (int i = 0; i < kept; i++) l[i + 1] = cands[i].id;
        l[0] = (uint32_t)kept;
    }
    unlock_node(h, nb);
}

static void global_lock(struct cc_hnsw *h) {
    while (atomic_flag_test_and_set_explicit(&h->global_lock, memory_order_acquire)) __builtin_ia32_pause();
}
static void global_unlock(struct cc_hnsw *h) { atomic_flag_clear_explicit(&h->global_lock, memory_order_release); }

/* Under s's lock: the links other threads added to a fresh node s at `level` while it was being
 * inserted (it is reachable at a level as soon as its reverse links there exist, and a concurrent
 * insertion may then pick it as a neighbour one level below, before s has written that level).
 * They are merged into s's own selection `sel` (kept entries) rather than overwritten: an
 * overwritten link is an in-link lost for that neighbour, and with the heuristic's pruning some
 * nodes ended with none (unreachable; ~1 in 1000 with 2 threads before this). Returns the count. */
static int merge_concurrent_links(layer_search *ls, uint32_t s, const float *q, int level, hnode *sel, int kept) {
    struct cc_hnsw *h = ls->h;
    int max = level == 0 ? h->M0 : h->M;
    const uint32_t *links = node_links(h, s, level);
    int n_added = links[0] > (uint32_t)max ? max : (int)links[0], n = kept;
    for (int i = 0; i < n_added; i++) {
        uint32_t id = links[i + 1];
        int known = (int64_t)id >= ls->n_nodes || id == s;
        for (int j = 0; j < n && !known; j++) known = sel[j].id == id;
        if (known) continue;
        sel[n].id = id;
        sel[n++].sim = sim1(&ls->sc, q, node_vec(h, id));
    }
    if (n == kept) return kept;
    qsort(sel, (size_t)n, sizeof(hnode), cmp_hnode_desc);
    return select_neighbours(&ls->sc, h, sel, n, max);
}

/* Inserts slot s (record, level and upper space set up). A fresh slot starts without links; a
 * reused one keeps its old links until each level is replaced here. */
static int insert_node(layer_search *ls, uint32_t s, int ef_construction, int fresh) {
    struct cc_hnsw *h = ls->h;
    int level = node_level(h, s);
    const float *q = node_vec(h, s);
    global_lock(h);
    int top = h->max_level;
    int64_t entry = h->entry;
    int holds_global = level > top; /* a new top node keeps the lock until it is the entry */
    if (entry < 0) {
        h->entry = s;
        h->max_level = level;
        global_unlock(h);
        return 0;
    }
    if (!holds_global) global_unlock(h);
    uint32_t cur = (uint32_t)entry;
    float cur_sim = sim1(&ls->sc, q, node_vec(h, cur));
    for (int l = top; l > level; l--) greedy_level(ls, q, l, &cur, &cur_sim);
    hnode *sel = malloc(sizeof(hnode) * (size_t)(ef_construction + 1 + 2 * h->M0));
    if (!sel) {
        if (holds_global) global_unlock(h);
        return -1;
    }
    int rc = 0;
    for (int l = level < top ? level : top; l >= 0; l--) {
        visited_next(ls->vis);
        ls->vis->marks[s] = ls->vis->tag; /* never link to itself (stale links may lead back to a reused slot) */
        if (cur == s) { /* only possible through a stale link: restart from the entry */
            cur = (uint32_t)entry;
            cur_sim = sim1(&ls->sc, q, node_vec(h, cur));
        }
        if (search_layer(ls, q, cur, cur_sim, l, ef_construction) != 0) {
            rc = -1;
            break;
        }
        int n = ls->res.n;
        if (n == 0) continue;
        for (int i = n - 1; i >= 0; i--) { /* best first */
            sel[i] = ls->res.a[0];
            minheap_pop(&ls->res);
        }
        cur = sel[0].id; /* the next level starts from the best found here */
        cur_sim = sel[0].sim;
        int kept = select_neighbours(&ls->sc, h, sel, n, h->M);
        lock_node(h, s);
        if (fresh && ls->locked) kept = merge_concurrent_links(ls, s, q, l, sel, kept);
        uint32_t *links = node_links(h, s, l);
        for (int i = 0; i < kept; i++) links[i + 1] = sel[i].id;
        links[0] = (uint32_t)kept;
        unlock_node(h, s);
        for (int i = 0; i < kept; i++) add_reverse_link(ls, sel[i].id, s, sel[i].sim, l);
    }
    free(sel);
    if (holds_global) {
        h->entry = s;
        h->max_level = level;
        global_unlock(h);
    }
    return rc;
}

static int draw_level(cc_rng *rng, double mult) {
    double u = cc_rng_uniform(rng);
    if (u <= 0) u = 1e-300;
    double level = -log(u) * mult;
    return level > HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (int)level;
}

/* Rebuilds upper_off from levels for slots [0, n). */
static int compute_upper_offsets(struct cc_hnsw *h, int64_t n, uint64_t *total) {
    if (n > h->upper_off_cap) {
        int64_t cap = h->upper_off_cap ? h->upper_off_cap : 1024;
        while (cap < n) cap *= 2;
        uint64_t *grown = realloc(h->upper_off, (size_t)cap * sizeof(uint64_t));
        if (!grown) {
            cc_set_error("out of memory for HNSW level offsets");
            return -1;
        }
        h->upper_off = grown;
        h->upper_off_cap = cap;
    }
    uint64_t off = 0;
    for (int64_t s = 0; s < n; s++) {
        h->upper_off[s] = off;
        off += (uint64_t)h->levels.ptr[s] * (uint64_t)(1 + h->M);
    }
    *total = off;
    return 0;
}

static int hnsw_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
                    int64_t new_n_slots) {
    struct cc_hnsw *h = hnsw_of(idx);
    int64_t old_n = h->n_nodes;
    size_t bytes;
    if (!cc_mul_size((size_t)new_n_slots, h->rec_size, &bytes)) {
        cc_set_error("HNSW add: too many vectors");
        return -1;
    }
    if (cc_buf_resize(&h->level0, bytes, "HNSW graph") != 0) return -1;
    if (cc_buf_resize(&h->levels, (size_t)new_n_slots, "HNSW levels") != 0) return -1;
    /* levels: drawn in insertion order from the seed (the rng continues across adds) */
    cc_rng rng;
    cc_rng_seed(&rng, idx->seed ^ ((uint64_t)old_n * 0x9e3779b97f4a7c15ull));
    for (int64_t i = 0; i < n; i++)
        if (slots[i] >= old_n) h->levels.ptr[slots[i]] = (uint8_t)draw_level(&rng, h->level_mult);
    uint64_t upper_total;
    if (compute_upper_offsets(h, new_n_slots, &upper_total) != 0) return -1;
    /* the pool is in slot order: new slots append; reused slots keep their space */
    if (cc_buf_resize(&h->upper, (size_t)upper_total * 4, "HNSW upper links") != 0) return -1;
    free(h->locks);
    h->locks = calloc((size_t)new_n_slots, sizeof(atomic_flag));
    if (!h->locks) {
        cc_set_error("out of memory for HNSW locks");
        return -1;
    }
    /* records: vector and label; new slots start without links, reused slots keep their old links
     * until their insertion replaces them (as hnswlib does), so they are no dead ends meanwhile */
    uint64_t *is_new = cc_calloc(((size_t)new_n_slots + 63) / 64, 8, "HNSW add flags");
    if (!is_new) return -1;
    for (int64_t i = 0; i < n; i++) is_new[slots[i] >> 6] |= 1ull << (slots[i] & 63);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint8_t *rec = h->level0.ptr + (size_t)slots[i] * h->rec_size;
        memcpy(rec, x + i * idx->dim, (size_t)idx->dim * sizeof(float));
        memcpy(rec + h->label_off, &labels[i], 8);
        if (slots[i] >= old_n)
            for (int l = 0; l <= h->levels.ptr[slots[i]]; l++) node_links(h, slots[i], l)[0] = 0;
    }
    h->n_nodes = new_n_slots;
    /* an entry point that is being reused: the entry moves to the highest other node */
    if (h->entry >= 0 && ((is_new[h->entry >> 6] >> (h->entry & 63)) & 1)) {
        int64_t best = -1;
        int best_level = -1;
        for (int64_t s = 0; s < old_n; s++)
            if (!((is_new[s >> 6] >> (s & 63)) & 1) && h->levels.ptr[s] > best_level) best = s, best_level = h->levels.ptr[s];
        h->entry = best;
        h->max_level = best_level;
    }
    free(is_new);

    cc_progress progress;
    int show = n >= HNSW_PROGRESS_MIN;
    if (show) cc_progress_start(&progress, "hnsw build", n, "vec");
    int64_t first = 0;
    int failed = 0;
    int threads = cc_get_threads();
    if (threads <= 1) {
        /* deterministic, lock-free */
        free(h->locks);
        h->locks = NULL;
    }
    if (h->entry < 0 && n > 0) {
        layer_search ls;
        if (layer_search_init(&ls, idx, new_n_slots) != 0 || insert_node(&ls, (uint32_t)slots[0], idx->ef_construction, slots[0] >= old_n) != 0)
            failed = 1;
        layer_search_done(&ls);
        first = 1;
    }
    int64_t done = first;
    int ef = idx->ef_construction;
#pragma omp parallel reduction(| : failed)
    {
        layer_search ls;
        if (layer_search_init(&ls, idx, new_n_slots) != 0) failed = 1;
        ls.locked = h->locks != NULL;
        int master = 1;
#ifdef _OPENMP
        master = omp_get_thread_num() == 0;
#endif
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = first; i < n; i++) {
            if (failed) continue;
            if (insert_node(&ls, (uint32_t)slots[i], ef, slots[i] >= old_n) != 0) failed = 1;
            int64_t now = __atomic_add_fetch(&done, 1, __ATOMIC_RELAXED);
            if (show && master) cc_progress_update(&progress, now);
        }
        layer_search_done(&ls);
    }
    if (show) cc_progress_finish(&progress);
    free(h->locks);
    h->locks = NULL;
    if (failed) {
        cc_set_error("HNSW add: out of memory");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ file */

static int hnsw_write_params(const cc_index *idx, char *buf, size_t size) {
    const struct cc_hnsw *h = hnsw_of(idx);
    return snprintf(buf, size, "hnsw.entry=%lld\nhnsw.maxLevel=%d\nhnsw.recordSize=%zu\n", (long long)h->entry,
                    h->max_level, h->rec_size);
}

static int hnsw_read_param(cc_index *idx, const char *key, const char *value) {
    struct cc_hnsw *h = hnsw_of(idx);
    int64_t v;
    if (!strcmp(key, "hnsw.entry")) {
        if (cc_parse_int64(value, -1, CC_INDEX_MAX_SLOTS, &v) != 0) goto bad;
        h->entry = v;
    } else if (!strcmp(key, "hnsw.maxLevel")) {
        if (cc_parse_int64(value, -1, HNSW_MAX_LEVEL, &v) != 0) goto bad;
        h->max_level = (int)v;
    } else if (!strcmp(key, "hnsw.recordSize")) {
        if (cc_parse_int64(value, 0, INT64_MAX, &v) != 0 || (size_t)v != h->rec_size) {
            cc_set_error("HNSW record size %s does not match %zu for this dimension and M", value, h->rec_size);
            return -1;
        }
    }
    return 0;
bad:
    cc_set_error("bad value '%s' for %s", value, key);
    return -1;
}

static int hnsw_save(const cc_index *idx, cc_writer *w) {
    const struct cc_hnsw *h = hnsw_of(idx);
    if (cc_writer_section(w, "hnswlev") != 0 || cc_writer_write(w, h->levels.ptr, (size_t)idx->n_slots) != 0) return -1;
    if (cc_writer_section(w, "hnswup") != 0 || cc_writer_write(w, h->upper.ptr, h->upper.size) != 0) return -1;
    if (cc_writer_section(w, "hnswl0") != 0 || cc_writer_write(w, h->level0.ptr, (size_t)idx->n_slots * h->rec_size) != 0)
        return -1;
    return 0;
}

static int hnsw_load(cc_index *idx, const cc_reader *r) {
    struct cc_hnsw *h = hnsw_of(idx);
    size_t n = (size_t)idx->n_slots;
    const uint8_t *lev, *up, *l0;
    size_t up_size, l0_bytes;
    if (!cc_mul_size(n, h->rec_size, &l0_bytes)) {
        cc_set_error("%s: HNSW graph size overflows", r->path);
        return -1;
    }
    if (cc_reader_get(r, "hnswlev", n, 1, &lev, NULL) < 0) return -1;
    if (cc_reader_get(r, "hnswup", CC_ANY_SIZE, 1, &up, &up_size) < 0) return -1;
    if (cc_reader_get(r, "hnswl0", l0_bytes, 1, &l0, NULL) < 0) return -1;
    for (size_t s = 0; s < n; s++)
        if (lev[s] > HNSW_MAX_LEVEL) {
            cc_set_error("%s: HNSW level %u of slot %zu is out of range", r->path, lev[s], s);
            return -1;
        }
    if (n) {
        cc_buf_view(&h->levels, lev, n);
        cc_buf_view(&h->level0, l0, l0_bytes);
    }
    uint64_t total;
    if (compute_upper_offsets(h, (int64_t)n, &total) != 0) return -1;
    if (total * 4 != up_size) {
        cc_set_error("%s: section 'hnswup' has %zu bytes, the levels need %llu", r->path, up_size,
                     (unsigned long long)total * 4);
        return -1;
    }
    if (up_size) cc_buf_view(&h->upper, up, up_size);
    h->n_nodes = (int64_t)n;
    if ((n == 0) != (h->entry < 0) || (h->entry >= 0 && ((size_t)h->entry >= n || lev[h->entry] != h->max_level))) {
        cc_set_error("%s: bad HNSW entry point %lld (max level %d)", r->path, (long long)h->entry, h->max_level);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ parameters and table */

#define HNSW_TUNE_MAX_EF 8192 /* efSearch explored by tuning at most */

static int hnsw_set_param(cc_index *idx, const char *name, int64_t value) {
    int *field = !strcmp(name, "efSearch") ? &idx->ef_search
                 : !strcmp(name, "efConstruction") ? &idx->ef_construction
                                                     : NULL;
    if (!field) return CC_PARAM_NOT_APPLICABLE;
    if (value < 1 || value > CC_INDEX_MAX_EF) return CC_PARAM_BAD_VALUE;
    *field = (int)value;
    return 0;
}

static int hnsw_tune_space(const cc_index *idx, int k, cc_tune_space *out) {
    (void)idx;
    out->knob = "efSearch";
    out->lo = k;
    out->hi = HNSW_TUNE_MAX_EF;
    out->exact_at_hi = 0;
    out->rerank = 0;
    return 0;
}

const cc_index_ops cc_hnsw_ops = {
    .name = "HNSW",
    .init = hnsw_init,
    .free = hnsw_free,
    .add = hnsw_add,
    .search = hnsw_search,
    .slot_vector = hnsw_slot_vector,
    .slot_label = hnsw_slot_label,
    .save = hnsw_save,
    .load = hnsw_load,
    .write_params = hnsw_write_params,
    .read_param = hnsw_read_param,
    .memory = hnsw_memory,
    .get_param = hnsw_get_param,
    .set_param = hnsw_set_param,
    .tune_space = hnsw_tune_space,
};
