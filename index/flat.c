/* flat.c — exact search ("Flat"), and the exact re-scoring used by RFlat and small filters.
 *
 * Memory layout: idx->vectors holds one row of dim float32 per slot, in slot order, contiguous
 * (row stride dim); with the L2 metric idx->norms holds the squared norm of every row. A removed
 * slot keeps its row until a later add reuses it; scans skip it by the removed bitmap.
 *
 * Search: a few queries scan the rows with the SIMD kernels (4 rows per step, prefetching ahead),
 * splitting the rows over threads when there are fewer queries than threads; batches of queries
 * compute blocks of query×row inner products with cc_sgemm and feed each query's top-k heap from
 * the score block (threads over queries). For L2, ||q - x||² = ||q||² - 2 q·x + ||x||².
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/distance.h"
#include "index/internal.h"
#include "index/topk.h"
#include "kernels/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define FLAT_GEMM_MIN_QUERIES 16 /* batches of at least this many queries use GEMM */
#define FLAT_SCAN_BLOCK 512      /* rows scored per SIMD scan step */
#define FLAT_GEMM_Q_BLOCK 256    /* queries per GEMM block */
#define FLAT_GEMM_DB_BLOCK 4096  /* rows per GEMM block (score block per thread = 4 MB) */
#define FLAT_GEMM_MIN_Q_PER_THREAD 64 /* below this many queries per thread, threads split the rows */

static int flat_init(cc_index *idx, const cc_index_spec *spec) {
    (void)spec;
    idx->exact_vectors = 1;
    return 0;
}

static int flat_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
                    int64_t new_n_slots) {
    (void)labels;
    size_t row = (size_t)idx->dim * sizeof(float);
    size_t bytes;
    if (!cc_mul_size((size_t)new_n_slots, row, &bytes)) {
        cc_set_error("Flat add: %lld vectors of %d floats overflow memory", (long long)new_n_slots, idx->dim);
        return -1;
    }
    if (cc_buf_resize(&idx->vectors, bytes, "Flat vectors") != 0) return -1;
    if (idx->metric == CC_METRIC_L2 && cc_buf_resize(&idx->norms, (size_t)new_n_slots * 4, "Flat norms") != 0)
        return -1;
    float *vec = (float *)idx->vectors.ptr;
    float *norms = (float *)idx->norms.ptr;
    const cc_dist_kernels *dk = cc_dist();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *dst = vec + slots[i] * idx->dim;
        memcpy(dst, x + i * idx->dim, row);
        if (idx->metric == CC_METRIC_L2) norms[slots[i]] = dk->ip(dst, dst, (size_t)idx->dim);
    }
    return 0;
}

/* Scans rows [from, to) for one query into the heap. */
static void scan_rows(const cc_index *idx, const float *q, int64_t from, int64_t to, const cc_search_ctx *ctx,
                      cc_topk *heap) {
    const cc_dist_kernels *dk = cc_dist();
    const float *vec = (const float *)idx->vectors.ptr;
    size_t d = (size_t)idx->dim;
    int ip = idx->metric == CC_METRIC_IP;
    float scores[FLAT_SCAN_BLOCK];
    for (int64_t b = from; b < to; b += FLAT_SCAN_BLOCK) {
        size_t count = (size_t)(to - b < FLAT_SCAN_BLOCK ? to - b : FLAT_SCAN_BLOCK);
        if (ip) dk->ip_rows(q, vec + b * (int64_t)d, count, d, scores);
        else dk->l2sq_rows(q, vec + b * (int64_t)d, count, d, scores);
        float threshold = cc_topk_threshold(heap);
        for (size_t i = 0; i < count; i++) {
            float sim = ip ? scores[i] : -scores[i];
            if (sim > threshold && cc_slot_ok(idx, ctx->filter, b + (int64_t)i)) {
                cc_topk_push(heap, sim, b + (int64_t)i);
                threshold = cc_topk_threshold(heap);
            }
        }
    }
}

/* Few queries: per query, rows split over threads when queries are fewer than threads. */
static int search_scan(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                       int64_t *out_slots, float *out_sims) {
    int threads = cc_get_threads();
    int64_t n = idx->n_slots;
    if (nq >= threads || n < 4 * FLAT_SCAN_BLOCK || threads == 1) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t i = 0; i < nq; i++) {
            cc_topk heap;
            cc_topk_init(&heap, out_sims + i * k, out_slots + i * k, k);
            scan_rows(idx, q + i * idx->dim, 0, n, ctx, &heap);
            cc_topk_finish(&heap);
        }
        return 0;
    }
    float *part_sims = cc_malloc((size_t)threads * (size_t)k * sizeof(float), "Flat partial results");
    int64_t *part_ids = cc_malloc((size_t)threads * (size_t)k * sizeof(int64_t), "Flat partial results");
    if (!part_sims || !part_ids) {
        free(part_sims);
        free(part_ids);
        return -1;
    }
    for (int64_t i = 0; i < nq; i++) {
        int used = threads;
#pragma omp parallel num_threads(threads)
        {
            int t = 0, nt = 1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            nt = omp_get_num_threads();
#pragma omp single
            used = nt;
#endif
            /* chunk boundaries on scan-block multiples */
            int64_t blocks = (n + FLAT_SCAN_BLOCK - 1) / FLAT_SCAN_BLOCK;
            int64_t from = blocks * t / nt * FLAT_SCAN_BLOCK, to = blocks * (t + 1) / nt * FLAT_SCAN_BLOCK;
            if (to > n) to = n;
            cc_topk heap;
            cc_topk_init(&heap, part_sims + (size_t)t * k, part_ids + (size_t)t * k, k);
            scan_rows(idx, q + i * idx->dim, from, to, ctx, &heap);
            for (int j = heap.size; j < k; j++) {
                heap.sims[j] = -INFINITY;
                heap.ids[j] = -1;
            }
        }
        cc_topk heap;
        cc_topk_init(&heap, out_sims + i * k, out_slots + i * k, k);
        for (int t = 0; t < used; t++)
            for (int j = 0; j < k; j++)
                if (part_ids[(size_t)t * k + j] >= 0) cc_topk_push(&heap, part_sims[(size_t)t * k + j], part_ids[(size_t)t * k + j]);
        cc_topk_finish(&heap);
    }
    free(part_sims);
    free(part_ids);
    return 0;
}

/* Scores one block of queries against rows [ds, ds + dc) with GEMM and feeds the heaps. */
static void gemm_block(const cc_index *idx, const float *base, int64_t stride, const float *norms, float *block_norms,
                       int check_slots, const cc_id_filter *filter, const float *q, int64_t qc, int64_t ds, int64_t dc,
                       float *scores, cc_topk *heaps) {
    int64_t d = idx->dim;
    int ip = idx->metric == CC_METRIC_IP;
    const float *rows = base + ds * stride;
    cc_sgemm(0, 1, qc, dc, d, ip ? 1.0f : 2.0f, q, d, rows, stride, 0.0f, scores, dc);
    const float *bn = norms ? norms + ds : block_norms;
    if (!ip && !norms) {
        const cc_dist_kernels *dk = cc_dist();
        for (int64_t j = 0; j < dc; j++) block_norms[j] = dk->ip(rows + j * stride, rows + j * stride, (size_t)d);
    }
    /* the common case, every row eligible: SIMD threshold filtering */
    int plain = !check_slots || (!filter && !idx->n_removed);
    for (int64_t i = 0; i < qc; i++) {
        float *row = scores + i * dc;
        cc_topk *heap = &heaps[i];
        if (plain) {
            if (!ip)
                for (int64_t j = 0; j < dc; j++) row[j] -= bn[j];
            cc_topk_push_row(heap, row, dc, ds);
            continue;
        }
        float threshold = cc_topk_threshold(heap);
        for (int64_t j = 0; j < dc; j++) {
            float sim = ip ? row[j] : row[j] - bn[j];
            if (sim > threshold && (!check_slots || cc_slot_ok(idx, filter, ds + j))) {
                cc_topk_push(heap, sim, ds + j);
                threshold = cc_topk_threshold(heap);
            }
        }
    }
}

/* Batches: GEMM blocks of query×row inner products, then per-query selection. Rows are n_rows
 * vectors at base with a stride of `stride` floats; with check_slots they are slots (removed ones
 * and those the filter rejects are skipped). norms (squared, per row) may be NULL for L2: they are
 * then computed per block. Every thread runs its own single-threaded GEMMs: over query blocks
 * when there are enough queries, else over row blocks with per-thread heaps merged at the end. */
int cc_exact_search_rows(const cc_index *idx, const float *base, int64_t stride, int64_t n_rows, const float *norms,
                         int check_slots, const cc_id_filter *filter, int64_t nq, const float *q, int k,
                         int64_t *out_rows, float *out_sims) {
    int64_t n = n_rows, d = idx->dim;
    int threads = cc_get_threads();
    int ip = idx->metric == CC_METRIC_IP;
    int by_queries = nq >= (int64_t)threads * FLAT_GEMM_MIN_Q_PER_THREAD;
    int64_t q_block = nq < FLAT_GEMM_Q_BLOCK ? nq : FLAT_GEMM_Q_BLOCK;
    if (by_queries && threads > 1 && (nq + q_block - 1) / q_block < 2 * threads) {
        q_block = (nq + 2 * threads - 1) / (2 * threads); /* at least two blocks per thread */
        if (q_block < FLAT_GEMM_MIN_Q_PER_THREAD) q_block = FLAT_GEMM_MIN_Q_PER_THREAD;
    }
    int64_t db_block = n < FLAT_GEMM_DB_BLOCK ? n : FLAT_GEMM_DB_BLOCK;
    if (db_block < 1) db_block = 1;
    int n_heaps = by_queries ? 1 : threads;
    cc_topk *heaps = cc_malloc((size_t)nq * n_heaps * sizeof(cc_topk), "exact search heaps");
    float *part_sims = n_heaps > 1 ? cc_malloc((size_t)nq * k * (n_heaps - 1) * sizeof(float), "partial results") : NULL;
    int64_t *part_ids = n_heaps > 1 ? cc_malloc((size_t)nq * k * (n_heaps - 1) * sizeof(int64_t), "partial results") : NULL;
    if (!heaps || (n_heaps > 1 && (!part_sims || !part_ids))) {
        free(heaps), free(part_sims), free(part_ids);
        return -1;
    }
    for (int h = 0; h < n_heaps; h++)
        for (int64_t i = 0; i < nq; i++) {
            float *sims = h == 0 ? out_sims + i * k : part_sims + ((size_t)(h - 1) * nq + i) * k;
            int64_t *ids = h == 0 ? out_rows + i * k : part_ids + ((size_t)(h - 1) * nq + i) * k;
            cc_topk_init(&heaps[(size_t)h * nq + i], sims, ids, k);
        }
    int failed = 0;
    cc_gemm_per_thread_begin();
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *scores = cc_malloc_aligned((size_t)q_block * (size_t)db_block * sizeof(float), "exact score block");
        float *block_norms = !ip && !norms ? cc_malloc((size_t)db_block * sizeof(float), "row norms") : NULL;
        if (!scores || (!ip && !norms && !block_norms)) failed = 1;
        if (by_queries) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t qs = 0; qs < nq; qs += q_block) {
                if (failed) continue;
                int64_t qc = nq - qs < q_block ? nq - qs : q_block;
                for (int64_t ds = 0; ds < n; ds += db_block)
                    gemm_block(idx, base, stride, norms, block_norms, check_slots, filter, q + qs * d, qc, ds,
                               n - ds < db_block ? n - ds : db_block, scores, heaps + qs);
            }
        } else {
#pragma omp for schedule(dynamic, 1)
            for (int64_t ds = 0; ds < n; ds += db_block) {
                if (failed) continue;
                for (int64_t qs = 0; qs < nq; qs += q_block)
                    gemm_block(idx, base, stride, norms, block_norms, check_slots, filter, q + qs * d,
                               nq - qs < q_block ? nq - qs : q_block, ds, n - ds < db_block ? n - ds : db_block,
                               scores, heaps + (size_t)t * nq + qs);
            }
        }
        cc_free_aligned(scores);
        free(block_norms);
    }
    cc_gemm_per_thread_end();
    if (failed) {
        free(heaps), free(part_sims), free(part_ids);
        cc_set_error("exact search: out of memory for score blocks");
        return -1;
    }
    const cc_dist_kernels *dk = cc_dist();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nq; i++) {
        cc_topk *heap = &heaps[i];
        for (int h = 1; h < n_heaps; h++) {
            const cc_topk *part = &heaps[(size_t)h * nq + i];
            for (int j = 0; j < part->size; j++)
                if (part->sims[j] > cc_topk_threshold(heap)) cc_topk_push(heap, part->sims[j], part->ids[j]);
        }
        cc_topk_finish(heap);
        if (!ip) {
            float qn = dk->ip(q + i * d, q + i * d, (size_t)d);
            for (int j = 0; j < k; j++) out_sims[i * k + j] -= qn;
        }
    }
    free(heaps), free(part_sims), free(part_ids);
    return 0;
}

static int flat_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                       int64_t *out_slots, float *out_sims) {
    if (nq >= FLAT_GEMM_MIN_QUERIES)
        return cc_exact_search_rows(idx, (const float *)idx->vectors.ptr, idx->dim, idx->n_slots,
                                    (const float *)idx->norms.ptr, 1, ctx->filter, nq, q, k, out_slots, out_sims);
    return search_scan(idx, nq, q, k, ctx, out_slots, out_sims);
}

#define RERANK_PREFETCH_LINES 8 /* cache lines of the next candidates' vectors touched ahead */

void cc_rerank_exact(const cc_index *idx, const float *q, const int64_t *cand, int n_cand, int k,
                     int64_t *out_slots, float *out_sims) {
    const cc_dist_kernels *dk = cc_dist();
    size_t d = (size_t)idx->dim;
    int ip = idx->metric == CC_METRIC_IP;
    cc_topk heap;
    cc_topk_init(&heap, out_sims, out_slots, k);
    int64_t batch[4];
    int nb = 0;
    for (int i = 0; i <= n_cand; i++) {
        if (i < n_cand) {
            if (cand[i] < 0) continue;
            if (i + 4 < n_cand && cand[i + 4] >= 0) {
                const char *p = (const char *)cc_index_slot_vector(idx, cand[i + 4]);
                for (int l = 0; l < RERANK_PREFETCH_LINES && (size_t)l * 16 < d; l++) __builtin_prefetch(p + 64 * l);
            }
            batch[nb++] = cand[i];
            if (nb < 4) continue;
        }
        if (nb == 0) break;
        const float *x[4];
        for (int j = 0; j < 4; j++) x[j] = cc_index_slot_vector(idx, batch[j < nb ? j : 0]);
        float dist[4];
        if (ip) dk->ip4(q, x[0], x[1], x[2], x[3], d, dist);
        else dk->l2sq4(q, x[0], x[1], x[2], x[3], d, dist);
        for (int j = 0; j < nb; j++) cc_topk_push(&heap, ip ? dist[j] : -dist[j], batch[j]);
        nb = 0;
    }
    cc_topk_finish(&heap);
}

/* ------------------------------------------------------------------ table */

static const float *flat_slot_vector(const cc_index *idx, int64_t slot) {
    return (const float *)idx->vectors.ptr + slot * idx->dim;
}

static int flat_load(cc_index *idx, const cc_reader *r) { return cc_load_float_rows(idx, r, 1); }

static int flat_tune_space(const cc_index *idx, int k, cc_tune_space *out) {
    (void)idx, (void)k, (void)out;
    cc_set_error("tune: Flat search is exact; there is nothing to tune");
    return -1;
}

const cc_index_ops cc_flat_ops = {
    .name = "Flat",
    .init = flat_init,
    .add = flat_add,
    .search = flat_search,
    .slot_vector = flat_slot_vector,
    .load = flat_load,
    .tune_space = flat_tune_space,
};
