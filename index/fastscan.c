/* fastscan.c — the 4-bit fast-scan PQ index types behind cc_fastscan_ops: "PQ<M>x4fs" (one list,
 * codes of the vectors), "IVF<nlist>,PQ<M>x4fs" (inverted lists of residual codes), each
 * optionally ",RFlat" (float vectors kept, the best k * rerank re-scored exactly). The quantiser,
 * the packed layout and the block kernels are in pq_fastscan.c (layout at the top of
 * pq_fastscan.h).
 *
 * Memory layout:
 *   centroids   float [nlist][dim]             coarse quantiser (IVF only; spherical k-means for IP)
 *   books       float [M][16][dim/M]           sub-quantiser centroids (pq.books)
 *   per list l: slots uint32 [size_l]          slot of entry e, in insertion order
 *               codes cc_pq4_packed_bytes(size_l, M) bytes: entry e is vector e % 32 of block
 *                     e / 32; the unused vectors of a last partial block have code 0
 *   RFlat keeps the float vectors by slot in idx->vectors.
 * Lists of a loaded index are views into the mapped file (copied to the heap when they grow);
 * books and centroids are copied (they are small and the kernels want them aligned).
 *
 * File sections: fsbook (trained), fscent (trained IVF), fssize (uint64 per list), fsslot (all
 * slots, list after list), fscodes (all packed codes, list after list), vectors (RFlat).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/internal.h"
#include "index/kmeans.h"
#include "index/pq_fastscan.h"
#include "index/topk.h"

#define FS_KMEANS_ITERATIONS 25           /* coarse quantiser, as IVF (ivf.c) */
#define FS_MAX_POINTS_PER_CENTROID 256    /* coarse k-means sample cap, as IVF */
#define FS_PQ_TRAIN_SAMPLE 32768          /* residuals the sub-quantisers are trained on */

typedef struct fs_list {
    int64_t size;
    cc_buf slots; /* uint32 [size] */
    cc_buf codes; /* packed, cc_pq4_packed_bytes(size, M) */
} fs_list;

typedef struct fs_state {
    int nlist;   /* 0: exhaustive, one list */
    int n_lists; /* max(nlist, 1) */
    int M, refine;
    cc_pq4 pq;
    float *centroids;      /* [nlist][dim], aligned, NULL until trained */
    float *centroid_norms; /* [nlist] squared norms */
    fs_list *lists;
} fs_state;

static inline fs_state *fs_of(const cc_index *idx) { return (fs_state *)idx->impl; }

/* ------------------------------------------------------------------ lifetime */

static int fs_init(cc_index *idx, const cc_index_spec *spec) {
    fs_state *fs = cc_calloc(1, sizeof *fs, "fast-scan state");
    if (!fs) return -1;
    idx->impl = fs;
    fs->nlist = spec->nlist;
    fs->n_lists = spec->nlist ? spec->nlist : 1;
    fs->M = spec->pq_m;
    fs->refine = spec->refine;
    idx->exact_vectors = spec->refine;
    if (cc_pq4_init(&fs->pq, idx->dim, spec->pq_m) != 0) {
        cc_prefix_error("index type '%s'", idx->desc);
        return -1;
    }
    fs->lists = cc_calloc((size_t)fs->n_lists, sizeof *fs->lists, "fast-scan lists");
    if (fs->nlist) {
        fs->centroids = cc_malloc_aligned((size_t)fs->nlist * idx->dim * sizeof(float), "IVF centroids");
        fs->centroid_norms = cc_malloc_aligned((size_t)fs->nlist * sizeof(float), "IVF centroid norms");
    }
    return fs->lists && (!fs->nlist || (fs->centroids && fs->centroid_norms)) ? 0 : -1;
}

static void fs_free(cc_index *idx) {
    fs_state *fs = fs_of(idx);
    if (!fs) return;
    for (int l = 0; fs->lists && l < fs->n_lists; l++) {
        cc_buf_free(&fs->lists[l].slots);
        cc_buf_free(&fs->lists[l].codes);
    }
    free(fs->lists);
    cc_pq4_release(&fs->pq);
    cc_free_aligned(fs->centroids);
    cc_free_aligned(fs->centroid_norms);
    free(fs);
    idx->impl = NULL;
}

/* ------------------------------------------------------------------ training */

/* Nearest list of each of n vectors (all 0 without IVF). */
static int assign_lists(const cc_index *idx, const float *x, int64_t n, int32_t *lists) {
    const fs_state *fs = fs_of(idx);
    if (!fs->nlist) {
        memset(lists, 0, (size_t)n * sizeof *lists);
        return 0;
    }
    float *sims = cc_malloc((size_t)(n ? n : 1) * sizeof(float), "IVF assignment");
    if (!sims) return -1;
    int rc = cc_nearest_centroids(x, n, idx->dim, fs->centroids, fs->centroid_norms, fs->nlist,
                                  idx->metric == CC_METRIC_IP, 1, lists, sims);
    free(sims);
    return rc;
}

/* x minus the centroid of its list, in place (nothing without IVF). */
static void subtract_centroids(const cc_index *idx, float *x, int64_t n, const int32_t *lists) {
    const fs_state *fs = fs_of(idx);
    if (!fs->nlist) return;
    int d = idx->dim;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[i * d + j] -= fs->centroids[(size_t)lists[i] * d + j];
}

static int train_coarse(cc_index *idx, int64_t n, const float *x) {
    fs_state *fs = fs_of(idx);
    cc_kmeans_params kp;
    cc_kmeans_default_params(&kp);
    kp.niter = FS_KMEANS_ITERATIONS;
    kp.ip = idx->metric == CC_METRIC_IP;
    kp.max_points_per_centroid = FS_MAX_POINTS_PER_CENTROID;
    kp.seed = idx->seed;
    if (cc_kmeans(x, n, idx->dim, fs->nlist, &kp, fs->centroids, NULL) != 0) return -1;
    cc_norms_sq(fs->centroids, (size_t)fs->nlist, (size_t)idx->dim, fs->centroid_norms);
    return 0;
}

static int fs_train(cc_index *idx, int64_t n, const float *x) {
    fs_state *fs = fs_of(idx);
    int d = idx->dim;
    if (n < fs->nlist || n < CC_PQ4_KSUB) {
        cc_set_error("training %s needs at least %d vectors, got %lld", idx->desc,
                     fs->nlist > CC_PQ4_KSUB ? fs->nlist : CC_PQ4_KSUB, (long long)n);
        return -1;
    }
    if (fs->nlist && train_coarse(idx, n, x) != 0) return -1;
    /* sub-quantisers on the residuals of evenly spread rows */
    int64_t n_pq = n < FS_PQ_TRAIN_SAMPLE ? n : FS_PQ_TRAIN_SAMPLE;
    float *sample = cc_malloc((size_t)n_pq * d * sizeof(float), "fast-scan training sample");
    int32_t *lists = cc_malloc((size_t)n_pq * sizeof(int32_t), "fast-scan training lists");
    int rc = -1;
    if (sample && lists) {
        for (int64_t i = 0; i < n_pq; i++) memcpy(sample + i * d, x + (i * n / n_pq) * d, (size_t)d * sizeof(float));
        if (assign_lists(idx, sample, n_pq, lists) == 0) {
            subtract_centroids(idx, sample, n_pq, lists);
            rc = cc_pq4_train(&fs->pq, sample, n_pq, idx->seed + 17);
        }
    }
    free(sample);
    free(lists);
    return rc;
}

/* ------------------------------------------------------------------ adding, removing */

/* Room for `size` entries: slots and whole blocks of codes (new bytes zeroed). */
static int list_resize(fs_list *L, int M, int64_t size) {
    if (cc_buf_resize(&L->slots, (size_t)size * 4, "fast-scan list slots") != 0) return -1;
    return cc_buf_resize(&L->codes, cc_pq4_packed_bytes(size, M), "fast-scan list codes");
}

static void list_append(fs_list *L, int M, uint32_t slot, const uint8_t *code) {
    cc_pq4_pack_code(L->codes.ptr, L->size, M, code);
    ((uint32_t *)L->slots.ptr)[L->size++] = slot;
}

static int fs_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
                  int64_t new_n_slots) {
    (void)labels;
    fs_state *fs = fs_of(idx);
    int d = idx->dim, M = fs->M;
    size_t vec_bytes;
    if (fs->refine && (!cc_mul_size((size_t)new_n_slots, (size_t)d * sizeof(float), &vec_bytes) ||
                       cc_buf_resize(&idx->vectors, vec_bytes, "re-ranking vectors") != 0))
        return -1;
    int32_t *lists = cc_malloc((size_t)n * sizeof(int32_t), "fast-scan assignment");
    int64_t *count = cc_calloc((size_t)fs->n_lists, sizeof(int64_t), "fast-scan list counts");
    uint8_t *codes = cc_malloc((size_t)n * M, "fast-scan codes");
    float *r = cc_malloc((size_t)n * d * sizeof(float), "fast-scan residuals");
    int rc = -1;
    if (!lists || !count || !codes || !r || assign_lists(idx, x, n, lists) != 0) goto done;
    memcpy(r, x, (size_t)n * d * sizeof(float));
    subtract_centroids(idx, r, n, lists);
    cc_pq4_encode(&fs->pq, r, n, codes);
    /* grow every list first, so that a failure leaves the lists as they were */
    for (int64_t i = 0; i < n; i++) count[lists[i]]++;
    for (int l = 0; l < fs->n_lists; l++)
        if (count[l] && list_resize(&fs->lists[l], M, fs->lists[l].size + count[l]) != 0) {
            for (int j = 0; j <= l; j++) /* shrink back (capacity stays) */
                if (count[j]) list_resize(&fs->lists[j], M, fs->lists[j].size);
            goto done;
        }
    for (int64_t i = 0; i < n; i++) {
        list_append(&fs->lists[lists[i]], M, (uint32_t)slots[i], codes + i * M);
        if (fs->refine) memcpy((float *)idx->vectors.ptr + slots[i] * d, x + i * d, (size_t)d * sizeof(float));
    }
    rc = 0;
done:
    free(lists);
    free(count);
    free(codes);
    free(r);
    return rc;
}

/* Drops the doomed slots of one list, repacking the kept codes into a fresh buffer. */
static int list_remove(fs_list *L, int M, const uint64_t *doomed) {
    const uint32_t *ls = (const uint32_t *)L->slots.ptr;
    int64_t hits = 0;
    for (int64_t e = 0; e < L->size; e++) hits += (doomed[ls[e] >> 6] >> (ls[e] & 63)) & 1;
    if (!hits) return 0;
    fs_list kept = {0};
    uint8_t code[CC_PQ4_MAX_M];
    if (list_resize(&kept, M, L->size - hits) != 0) {
        cc_buf_free(&kept.slots);
        cc_buf_free(&kept.codes);
        return -1;
    }
    for (int64_t e = 0; e < L->size; e++) {
        if ((doomed[ls[e] >> 6] >> (ls[e] & 63)) & 1) continue;
        cc_pq4_unpack_code(L->codes.ptr, e, M, code);
        list_append(&kept, M, ls[e], code);
    }
    cc_buf_free(&L->slots);
    cc_buf_free(&L->codes);
    *L = kept;
    return 0;
}

static int fs_remove(cc_index *idx, const uint64_t *doomed) {
    fs_state *fs = fs_of(idx);
    for (int l = 0; l < fs->n_lists; l++)
        if (list_remove(&fs->lists[l], fs->M, doomed) != 0) return -1;
    return 0;
}

static int fs_reconstruct(const cc_index *idx, int64_t slot, float *out) {
    const fs_state *fs = fs_of(idx);
    uint8_t code[CC_PQ4_MAX_M];
    for (int l = 0; l < fs->n_lists; l++) {
        const fs_list *L = &fs->lists[l];
        const uint32_t *ls = (const uint32_t *)L->slots.ptr;
        for (int64_t e = 0; e < L->size; e++) {
            if (ls[e] != (uint32_t)slot) continue;
            cc_pq4_unpack_code(L->codes.ptr, e, fs->M, code);
            cc_pq4_decode(&fs->pq, code, out);
            if (fs->nlist)
                for (int j = 0; j < idx->dim; j++) out[j] += fs->centroids[(size_t)l * idx->dim + j];
            return 0;
        }
    }
    cc_set_error("%s: slot %lld not found in any list", idx->desc, (long long)slot);
    return -1;
}

static const float *fs_slot_vector(const cc_index *idx, int64_t slot) {
    return (const float *)idx->vectors.ptr + slot * idx->dim; /* RFlat only (exact_vectors) */
}

/* ------------------------------------------------------------------ searching */

/* What one query's scan needs: its quantised table and the heap of candidates. */
typedef struct fs_scan {
    const cc_index *idx;
    const cc_id_filter *filter;
    cc_pq4_block_fn kernel;
    float *table; /* float table [M][16] */
    uint8_t *lut; /* quantised [M][16] */
    float base, scale;
    cc_topk heap;
} fs_scan;

static void quantize(fs_scan *s, const float *q) {
    cc_pq4_table(&fs_of(s->idx)->pq, q, s->idx->metric, s->table);
    cc_pq4_quantize_table(s->table, fs_of(s->idx)->M, s->lut, &s->base, &s->scale);
}

/* Heap threshold in table units: a sum must exceed it to possibly enter (-1: every sum). */
static int32_t sum_threshold(const fs_scan *s, float offset) {
    float thr = cc_topk_threshold(&s->heap);
    if (thr == -INFINITY) return -1;
    float ts = (thr - offset) / s->scale;
    if (!(ts >= 0)) return -1; /* also NaN (a table that overflowed): let every sum through */
    return ts >= 65535.0f ? 65535 : (int32_t)ts; /* s > floor(ts) for integer s > ts */
}

/* Pushes the entries of one list whose estimate (bias + base + scale * sum) may enter the heap. */
static void scan_list(fs_scan *s, const fs_list *L, float bias) {
    int M = fs_of(s->idx)->M;
    uint16_t sums[CC_PQ4_BLOCK];
    const uint32_t *ls = (const uint32_t *)L->slots.ptr;
    float offset = bias + s->base;
    for (int64_t first = 0; first < L->size; first += CC_PQ4_BLOCK) {
        uint32_t mask = s->kernel(L->codes.ptr + (size_t)(first / CC_PQ4_BLOCK) * M * 16, M, s->lut,
                                  sum_threshold(s, offset), sums);
        int64_t left = L->size - first;
        if (left < CC_PQ4_BLOCK) mask &= (1u << left) - 1;
        while (mask) {
            int i = __builtin_ctz(mask);
            mask &= mask - 1;
            if (cc_slot_ok(s->idx, s->filter, ls[first + i])) cc_topk_push(&s->heap, offset + s->scale * sums[i], ls[first + i]);
        }
    }
}

/* One query: the probed lists (IP: one table for every list, <q, centroid> added; L2: the table
 * of q - centroid per list). */
static void search_one(fs_scan *s, const float *q, const int32_t *probe, const float *probe_sims, int nprobe,
                       float *qres) {
    const fs_state *fs = fs_of(s->idx);
    int d = s->idx->dim, ip = s->idx->metric == CC_METRIC_IP;
    if (!fs->nlist) {
        quantize(s, q);
        scan_list(s, &fs->lists[0], 0);
        return;
    }
    if (ip) quantize(s, q);
    for (int p = 0; p < nprobe; p++) {
        int l = probe[p];
        if (l < 0) continue;
        if (!ip) {
            for (int j = 0; j < d; j++) qres[j] = q[j] - fs->centroids[(size_t)l * d + j];
            quantize(s, qres);
        }
        scan_list(s, &fs->lists[l], ip ? probe_sims[p] : 0);
    }
}

/* The nprobe nearest lists of every query (IVF), or NULL arrays without IVF. */
static int probe_lists(const cc_index *idx, int64_t nq, const float *q, int nprobe, int32_t **probe, float **sims) {
    const fs_state *fs = fs_of(idx);
    *probe = NULL, *sims = NULL;
    if (!fs->nlist) return 0;
    *probe = cc_malloc((size_t)nq * nprobe * sizeof(int32_t), "IVF probes");
    *sims = cc_malloc((size_t)nq * nprobe * sizeof(float), "IVF probe similarities");
    if (*probe && *sims &&
        cc_nearest_centroids(q, nq, idx->dim, fs->centroids, fs->centroid_norms, fs->nlist,
                             idx->metric == CC_METRIC_IP, nprobe, *probe, *sims) == 0)
        return 0;
    free(*probe), free(*sims);
    *probe = NULL, *sims = NULL;
    return -1;
}

static int fs_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                     int64_t *out_slots, float *out_sims) {
    const fs_state *fs = fs_of(idx);
    int d = idx->dim, M = fs->M;
    int nprobe = ctx->nprobe < 1 ? 1 : ctx->nprobe > fs->n_lists ? fs->n_lists : ctx->nprobe;
    int heap_k = k;
    if (fs->refine) {
        int64_t want = (int64_t)k * ctx->rerank;
        heap_k = want > idx->n_live ? (int)idx->n_live : (int)want;
        if (heap_k < k) heap_k = k;
    }
    int32_t *probe;
    float *probe_sims;
    if (probe_lists(idx, nq, q, nprobe, &probe, &probe_sims) != 0) return -1;
    cc_pq4_block_fn kernel = cc_pq4_block_kernel();
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *table = cc_malloc((size_t)M * 16 * sizeof(float), "fast-scan table");
        float *qres = cc_malloc((size_t)d * sizeof(float), "fast-scan residual query");
        uint8_t *lut = cc_malloc_aligned((size_t)M * 16, "fast-scan table");
        float *cand_sims = fs->refine ? cc_malloc((size_t)heap_k * sizeof(float), "re-rank candidates") : NULL;
        int64_t *cand = fs->refine ? cc_malloc((size_t)heap_k * sizeof(int64_t), "re-rank candidates") : NULL;
        if (!table || !qres || !lut || (fs->refine && (!cand_sims || !cand))) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < nq; i++) {
            if (failed) continue;
            fs_scan s = {.idx = idx, .filter = ctx->filter, .kernel = kernel, .table = table, .lut = lut};
            if (fs->refine) cc_topk_init(&s.heap, cand_sims, cand, heap_k);
            else cc_topk_init(&s.heap, out_sims + i * k, out_slots + i * k, k);
            search_one(&s, q + i * d, probe ? probe + i * nprobe : NULL, probe_sims ? probe_sims + i * nprobe : NULL,
                       nprobe, qres);
            if (fs->refine) cc_rerank_exact(idx, q + i * d, cand, s.heap.size, k, out_slots + i * k, out_sims + i * k);
            else cc_topk_finish(&s.heap);
        }
        free(table);
        free(qres);
        cc_free_aligned(lut);
        free(cand_sims);
        free(cand);
    }
    free(probe);
    free(probe_sims);
    if (failed) cc_set_error("%s search: out of memory for per-thread tables", idx->desc);
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------------ file */

static size_t books_bytes(const fs_state *fs) { return (size_t)fs->M * CC_PQ4_KSUB * fs->pq.dsub * sizeof(float); }

static int write_section(cc_writer *w, const char *name, const void *data, size_t bytes) {
    return cc_writer_section(w, name) == 0 && cc_writer_write(w, data, bytes) == 0 ? 0 : -1;
}

static int fs_save(const cc_index *idx, cc_writer *w) {
    const fs_state *fs = fs_of(idx);
    if (idx->trained && write_section(w, "fsbook", fs->pq.books, books_bytes(fs)) != 0) return -1;
    if (idx->trained && fs->nlist &&
        write_section(w, "fscent", fs->centroids, (size_t)fs->nlist * idx->dim * sizeof(float)) != 0)
        return -1;
    if (cc_writer_section(w, "fssize") != 0) return -1;
    for (int l = 0; l < fs->n_lists; l++) {
        uint64_t size = (uint64_t)fs->lists[l].size;
        if (cc_writer_write(w, &size, 8) != 0) return -1;
    }
    if (cc_writer_section(w, "fsslot") != 0) return -1;
    for (int l = 0; l < fs->n_lists; l++)
        if (cc_writer_write(w, fs->lists[l].slots.ptr, (size_t)fs->lists[l].size * 4) != 0) return -1;
    if (cc_writer_section(w, "fscodes") != 0) return -1;
    for (int l = 0; l < fs->n_lists; l++)
        if (cc_writer_write(w, fs->lists[l].codes.ptr, cc_pq4_packed_bytes(fs->lists[l].size, fs->M)) != 0) return -1;
    return 0;
}

/* Books and centroids (trained files): copied, checked finite. */
static int load_quantisers(cc_index *idx, const cc_reader *r) {
    fs_state *fs = fs_of(idx);
    const uint8_t *p;
    if (cc_reader_get(r, "fsbook", books_bytes(fs), 1, &p, NULL) < 0) return -1;
    memcpy(fs->pq.books, p, books_bytes(fs));
    if (cc_check_finite(fs->pq.books, (int64_t)fs->M * CC_PQ4_KSUB, fs->pq.dsub, "fast-scan codebooks") != 0) {
        cc_prefix_error("%s", r->path);
        return -1;
    }
    if (!fs->nlist) return 0;
    size_t bytes = (size_t)fs->nlist * idx->dim * sizeof(float);
    if (cc_reader_get(r, "fscent", bytes, 1, &p, NULL) < 0) return -1;
    memcpy(fs->centroids, p, bytes);
    if (cc_check_finite(fs->centroids, fs->nlist, idx->dim, "centroids") != 0) {
        cc_prefix_error("%s", r->path);
        return -1;
    }
    cc_norms_sq(fs->centroids, (size_t)fs->nlist, (size_t)idx->dim, fs->centroid_norms);
    return 0;
}

/* List sizes: each and their sum at most the live count, the sum equal to it; *code_bytes is the
 * packed size of all lists. */
static int load_sizes(const cc_index *idx, const cc_reader *r, const uint64_t **sizes, size_t *code_bytes) {
    const fs_state *fs = fs_of(idx);
    const uint8_t *p;
    if (cc_reader_get(r, "fssize", (size_t)fs->n_lists * 8, 1, &p, NULL) < 0) return -1;
    *sizes = (const uint64_t *)p;
    uint64_t total = 0;
    *code_bytes = 0;
    for (int l = 0; l < fs->n_lists; l++) {
        uint64_t s = (*sizes)[l];
        if (s > (uint64_t)idx->n_live || total + s > (uint64_t)idx->n_live) {
            cc_set_error("%s: fast-scan lists hold more entries than the %lld vectors in the index", r->path,
                         (long long)idx->n_live);
            return -1;
        }
        total += s;
        *code_bytes += cc_pq4_packed_bytes((int64_t)s, fs->M); /* <= n_live * M / 2 + n_lists * M * 16 */
    }
    if (total != (uint64_t)idx->n_live) {
        cc_set_error("%s: fast-scan lists hold %llu entries, the header says %lld vectors", r->path,
                     (unsigned long long)total, (long long)idx->n_live);
        return -1;
    }
    return 0;
}

/* Every live slot exactly once, none out of range or removed. */
static int check_slots(const cc_index *idx, const cc_reader *r, const uint32_t *slots, int64_t total) {
    uint64_t *seen = cc_calloc(CC_BITMAP_WORDS(idx->n_slots) + 1, 8, "slot check");
    if (!seen) return -1;
    for (int64_t e = 0; e < total; e++) {
        uint32_t s = slots[e];
        if ((int64_t)s >= idx->n_slots || cc_slot_removed(idx, s) || ((seen[s >> 6] >> (s & 63)) & 1)) {
            cc_set_error("%s: fast-scan list entry %lld refers to slot %u, which is %s", r->path, (long long)e, s,
                         (int64_t)s >= idx->n_slots ? "out of range" : cc_slot_removed(idx, s) ? "removed" : "listed twice");
            free(seen);
            return -1;
        }
        seen[s >> 6] |= 1ull << (s & 63);
    }
    free(seen);
    return 0;
}

static int fs_load(cc_index *idx, const cc_reader *r) {
    fs_state *fs = fs_of(idx);
    if (fs->refine && cc_load_float_rows(idx, r, 0) != 0) return -1;
    if (idx->trained && load_quantisers(idx, r) != 0) return -1;
    const uint64_t *sizes;
    const uint8_t *slots_p, *codes_p;
    size_t code_bytes;
    if (load_sizes(idx, r, &sizes, &code_bytes) != 0) return -1;
    if (cc_reader_get(r, "fsslot", (size_t)idx->n_live * 4, 1, &slots_p, NULL) < 0) return -1;
    if (cc_reader_get(r, "fscodes", code_bytes, 1, &codes_p, NULL) < 0) return -1;
    if (check_slots(idx, r, (const uint32_t *)slots_p, idx->n_live) != 0) return -1;
    for (int l = 0; l < fs->n_lists; l++) {
        fs_list *L = &fs->lists[l];
        L->size = (int64_t)sizes[l];
        size_t cb = cc_pq4_packed_bytes(L->size, fs->M);
        cc_buf_view(&L->slots, slots_p, (size_t)L->size * 4);
        cc_buf_view(&L->codes, codes_p, cb);
        slots_p += (size_t)L->size * 4;
        codes_p += cb;
    }
    return 0;
}

/* ------------------------------------------------------------------ parameters and table */

static int64_t fs_memory(const cc_index *idx) {
    const fs_state *fs = fs_of(idx);
    int64_t bytes = (int64_t)books_bytes(fs) + (int64_t)fs->nlist * (idx->dim + 1) * 4;
    for (int l = 0; l < fs->n_lists; l++) bytes += (int64_t)(fs->lists[l].slots.size + fs->lists[l].codes.size);
    return bytes;
}

static int64_t fs_get_param(const cc_index *idx, const char *name) {
    const fs_state *fs = fs_of(idx);
    if (!strcmp(name, "nprobe")) return fs->nlist ? (idx->nprobe < fs->nlist ? idx->nprobe : fs->nlist) : -1;
    if (!strcmp(name, "rerank")) return fs->refine ? idx->rerank : -1;
    if (!strcmp(name, "nlist")) return fs->nlist ? fs->nlist : -1;
    if (!strcmp(name, "M")) return fs->M;
    if (!strcmp(name, "nbits")) return 4;
    if (!strcmp(name, "refine")) return fs->refine;
    return -1;
}

static int fs_set_param(cc_index *idx, const char *name, int64_t value) {
    const fs_state *fs = fs_of(idx);
    if (!strcmp(name, "nprobe")) {
        if (!fs->nlist) return CC_PARAM_NOT_APPLICABLE;
        if (value < 1) return CC_PARAM_BAD_VALUE;
        int clamped = value > fs->nlist;
        idx->nprobe = clamped ? fs->nlist : (int)value;
        return clamped;
    }
    if (!strcmp(name, "rerank")) {
        if (!fs->refine) return CC_PARAM_NOT_APPLICABLE;
        if (value < 1 || value > CC_INDEX_MAX_RERANK) return CC_PARAM_BAD_VALUE;
        idx->rerank = (int)value;
        return 0;
    }
    return CC_PARAM_NOT_APPLICABLE;
}

static int fs_tune_space(const cc_index *idx, int k, cc_tune_space *out) {
    (void)k;
    const fs_state *fs = fs_of(idx);
    if (!fs->nlist) {
        cc_set_error("tune: %s scans every code; there is no search parameter to tune", idx->desc);
        return -1;
    }
    out->knob = "nprobe";
    out->lo = 1;
    out->hi = fs->nlist;
    out->exact_at_hi = 0;
    out->rerank = fs->refine;
    return 0;
}

const cc_index_ops cc_fastscan_ops = {
    .name = "PQx4fs",
    .init = fs_init,
    .free = fs_free,
    .train = fs_train,
    .add = fs_add,
    .search = fs_search,
    .remove = fs_remove,
    .reconstruct = fs_reconstruct,
    .slot_vector = fs_slot_vector,
    .save = fs_save,
    .load = fs_load,
    .memory = fs_memory,
    .get_param = fs_get_param,
    .set_param = fs_set_param,
    .tune_space = fs_tune_space,
};
