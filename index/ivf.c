/* ivf.c — inverted-file indexes: "IVF<nlist>,Flat", "IVF<nlist>,PQ<M>[,RFlat]" and "PQ<M>[,RFlat]"
 * (the latter is one list, no coarse quantiser, codes of the vectors themselves).
 *
 * Memory layout:
 *   centroids   float [nlist][dim]              coarse quantiser (k-means; spherical for IP)
 *   books       float [M][256][dim/M]           PQ sub-quantiser centroids
 *   per list l: slots uint32 [size_l]           slot of every entry, in insertion order
 *               data  IVF-Flat: float [size_l][dim], rows contiguous
 *                     PQ: size_l * M bytes in blocks of 64 codes: block b holds, for m = 0..M-1,
 *                     the 64 codes' bytes of sub-quantiser m contiguously (stride 64); the last
 *               block, with r = size_l % 64 codes, uses stride r, so nothing is padded.
 *   RFlat keeps the float vectors by slot in idx->vectors for exact re-ranking.
 * In a loaded index the per-list arrays are views into the mapped file; a list that grows is
 * copied to the heap (others stay mapped).
 *
 * Search of one query: the nprobe nearest centroids (GEMM over the query batch), then for PQ the
 * table <q_m, c_mj> (one per query: with the inner product the list term <q, centroid> is added
 * per list; with L2 and residuals the precomputed per-list term ||c_mj||² + 2<centroid_m, c_mj>
 * is combined with it, faiss's "precomputed tables"), and a scan of the lists' codes with the
 * 8-bit fast scan (AVX-512 VBMI) or the float table. RFlat re-scores the best k * rerank exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/progress.h"
#include "engine/util.h"
#include "index/distance.h"
#include "index/internal.h"
#include "index/kmeans.h"
#include "index/pq.h"
#include "index/topk.h"

#define IVF_KMEANS_ITERATIONS 25             /* coarse quantiser (faiss 1.7.3 uses 25 too) */
#define IVF_MAX_POINTS_PER_CENTROID 256      /* coarse k-means sample cap */
#define IVF_PQ_TRAIN_SAMPLE (CC_PQ_KSUB * 256) /* residuals the PQ is trained on */
#define IVF_PRECOMPUTED_MAX_BYTES ((size_t)1 << 29) /* L2 per-list tables up to 512 MB */
#define IVF_ENCODE_CHUNK 65536               /* rows encoded per step (bounds residual memory) */
#define IVF_FLAT_SCAN_BLOCK 512              /* rows scored per step in IVF-Flat lists */
#define IVF_TABLE_GROUP 4                    /* queries whose PQ tables are computed together */
#define IVF_PROGRESS_MIN_WORK 1e10           /* k-means work (points x centroids x dim) worth a progress line */
#define IVF_PROGRESS_MIN_ADD 100000          /* vectors encoded per add worth a progress line */

typedef struct ivf_list {
    cc_buf data;
    cc_buf slots;
    int64_t size;
} ivf_list;

struct cc_ivf {
    int nlist, by_residual, M, refine;
    cc_buf centroids;
    float *centroid_norms; /* [nlist], L2 only */
    cc_buf books;
    cc_pq pq;
    float *precomputed;    /* [nlist][M][256] for L2 with residuals, or NULL */
    ivf_list *lists;
};

static inline struct cc_ivf *ivf_of(const cc_index *idx) { return (struct cc_ivf *)idx->impl; }

static size_t entry_bytes(const cc_index *idx) {
    return ivf_of(idx)->M ? (size_t)ivf_of(idx)->M : (size_t)idx->dim * sizeof(float);
}

/* Byte offset of sub-quantiser m of entry e in a PQ list of `size` codes. */
static inline size_t code_offset(int64_t size, int M, int64_t e, int m, size_t *stride) {
    int64_t nfull = size / CC_PQ_BLOCK;
    int64_t b = e / CC_PQ_BLOCK;
    if (b < nfull) {
        *stride = CC_PQ_BLOCK;
        return (size_t)(b * CC_PQ_BLOCK * M) + (size_t)m * CC_PQ_BLOCK + (size_t)(e % CC_PQ_BLOCK);
    }
    *stride = (size_t)(size - nfull * CC_PQ_BLOCK);
    return (size_t)(nfull * CC_PQ_BLOCK * M) + (size_t)m * *stride + (size_t)(e - nfull * CC_PQ_BLOCK);
}

/* ------------------------------------------------------------------ lifetime */

static int ivf_init(cc_index *idx, const cc_index_spec *spec) {
    int nlist = spec->nlist, pq_m = spec->pq_m, by_residual = spec->by_residual, refine = spec->refine;
    if (pq_m && idx->dim % pq_m != 0) {
        cc_set_error("index type '%s': dimension %d is not a multiple of PQ M = %d", idx->desc, idx->dim, pq_m);
        return -1;
    }
    idx->exact_vectors = refine;
    struct cc_ivf *ivf = cc_calloc(1, sizeof *ivf, "IVF state");
    if (!ivf) return -1;
    ivf->nlist = nlist;
    ivf->by_residual = by_residual;
    ivf->M = pq_m;
    ivf->refine = refine;
    ivf->lists = cc_calloc((size_t)nlist, sizeof(ivf_list), "IVF lists");
    idx->impl = ivf;
    if (!ivf->lists) return -1;
    if (pq_m) {
        ivf->pq.d = idx->dim;
        ivf->pq.M = pq_m;
        ivf->pq.dsub = idx->dim / pq_m;
    }
    return 0;
}

static void release_derived(struct cc_ivf *ivf) {
    free(ivf->centroid_norms);
    ivf->centroid_norms = NULL;
    cc_pq_release(&ivf->pq);
    cc_free_aligned(ivf->precomputed);
    ivf->precomputed = NULL;
}

static void ivf_free(cc_index *idx) {
    struct cc_ivf *ivf = ivf_of(idx);
    if (!ivf) return;
    release_derived(ivf);
    cc_buf_free(&ivf->centroids);
    cc_buf_free(&ivf->books);
    if (ivf->lists)
        for (int l = 0; l < ivf->nlist; l++) {
            cc_buf_free(&ivf->lists[l].data);
            cc_buf_free(&ivf->lists[l].slots);
        }
    free(ivf->lists);
    free(ivf);
    idx->impl = NULL;
}

static int64_t ivf_get_param(const cc_index *idx, const char *name) {
    const struct cc_ivf *ivf = ivf_of(idx);
    if (!strcmp(name, "nprobe")) return idx->nprobe;
    if (!strcmp(name, "rerank")) return ivf->refine ? idx->rerank : -1;
    if (!strcmp(name, "nlist")) return ivf->by_residual ? ivf->nlist : -1;
    if (!strcmp(name, "M")) return ivf->M ? ivf->M : -1;
    if (!strcmp(name, "nbits")) return ivf->M ? 8 : -1;
    if (!strcmp(name, "refine")) return ivf->refine;
    return -1;
}

static int64_t ivf_memory(const cc_index *idx) {
    const struct cc_ivf *ivf = ivf_of(idx);
    int64_t bytes = (int64_t)(ivf->centroids.size + ivf->books.size);
    if (ivf->precomputed) bytes += (int64_t)ivf->nlist * ivf->M * CC_PQ_KSUB * 4;
    for (int l = 0; l < ivf->nlist; l++) bytes += (int64_t)(ivf->lists[l].data.size + ivf->lists[l].slots.size);
    return bytes;
}

/* Centroid norms, PQ tables and precomputed L2 terms from centroids and books. */
static int prepare_derived(cc_index *idx) {
    struct cc_ivf *ivf = ivf_of(idx);
    release_derived(ivf);
    int d = idx->dim;
    const float *cent = (const float *)ivf->centroids.ptr;
    if (ivf->by_residual && idx->metric == CC_METRIC_L2) {
        ivf->centroid_norms = cc_malloc((size_t)ivf->nlist * sizeof(float), "centroid norms");
        if (!ivf->centroid_norms) return -1;
        cc_norms_sq(cent, (size_t)ivf->nlist, (size_t)d, ivf->centroid_norms);
    }
    if (!ivf->M || !ivf->books.size) return 0; /* PQ not trained yet */
    ivf->pq.books = (const float *)ivf->books.ptr;
    if (cc_pq_prepare(&ivf->pq) != 0) return -1;
    size_t table = (size_t)ivf->M * CC_PQ_KSUB;
    if (ivf->by_residual && idx->metric == CC_METRIC_L2 &&
        (size_t)ivf->nlist * table * sizeof(float) <= IVF_PRECOMPUTED_MAX_BYTES) {
        ivf->precomputed = cc_malloc_aligned((size_t)ivf->nlist * table * sizeof(float), "IVF-PQ precomputed tables");
        if (!ivf->precomputed) return -1;
        /* term(l, m, j) = ||c_mj||² + 2 <centroid_l,m, c_mj> */
#pragma omp parallel for schedule(static)
        for (int l = 0; l < ivf->nlist; l++) {
            float *t = ivf->precomputed + (size_t)l * table;
            cc_pq_ip_table(&ivf->pq, cent + (size_t)l * d, t);
            for (size_t j = 0; j < table; j++) t[j] = ivf->pq.code_norms[j] + 2.0f * t[j];
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ training */

static int coarse_assign(const cc_index *idx, const float *x, int64_t n, int32_t *lists) {
    const struct cc_ivf *ivf = ivf_of(idx);
    if (!ivf->by_residual) {
        memset(lists, 0, (size_t)n * sizeof(int32_t));
        return 0;
    }
    float *sims = cc_malloc((size_t)(n ? n : 1) * sizeof(float), "coarse assignment");
    if (!sims) return -1;
    int rc = cc_nearest_centroids(x, n, idx->dim, (const float *)ivf->centroids.ptr, ivf->centroid_norms, ivf->nlist,
                                  idx->metric == CC_METRIC_IP, 1, lists, sims);
    free(sims);
    return rc;
}

static int ivf_train(cc_index *idx, int64_t n, const float *x) {
    struct cc_ivf *ivf = ivf_of(idx);
    int d = idx->dim;
    if (ivf->by_residual && n < ivf->nlist) {
        cc_set_error("training %s needs at least %d vectors (one per list), got %lld", idx->desc, ivf->nlist,
                     (long long)n);
        return -1;
    }
    if (ivf->M && n < CC_PQ_KSUB) {
        cc_set_error("training %s needs at least %d vectors (PQ codebooks of 256 centroids), got %lld", idx->desc,
                     CC_PQ_KSUB, (long long)n);
        return -1;
    }
    if (ivf->by_residual) {
        if (cc_buf_resize(&ivf->centroids, (size_t)ivf->nlist * d * sizeof(float), "IVF centroids") != 0) return -1;
        cc_kmeans_params kp;
        cc_kmeans_default_params(&kp);
        kp.niter = IVF_KMEANS_ITERATIONS;
        kp.ip = idx->metric == CC_METRIC_IP;
        kp.max_points_per_centroid = IVF_MAX_POINTS_PER_CENTROID;
        kp.seed = idx->seed;
        if ((double)n * ivf->nlist * d >= IVF_PROGRESS_MIN_WORK) kp.progress = "IVF k-means";
        if (cc_kmeans(x, n, d, ivf->nlist, &kp, (float *)ivf->centroids.ptr, NULL) != 0) return -1;
    }
    if (prepare_derived(idx) != 0) return -1;
    if (!ivf->M) return 0;
    /* PQ on the residuals of a random sample */
    int64_t n_sample = n < IVF_PQ_TRAIN_SAMPLE ? n : IVF_PQ_TRAIN_SAMPLE;
    float *res = cc_malloc_aligned((size_t)n_sample * d * sizeof(float), "PQ training residuals");
    int32_t *assign = cc_malloc((size_t)n_sample * sizeof(int32_t), "PQ training assignment");
    int rc = -1;
    if (!res || !assign) goto done;
    cc_rng rng;
    cc_rng_seed(&rng, idx->seed ^ 0x5151u);
    for (int64_t i = 0; i < n_sample; i++) {
        /* stratified random rows: one from each of n_sample equal ranges */
        int64_t lo = i * n / n_sample, hi = (i + 1) * n / n_sample;
        int64_t row = lo + (int64_t)cc_rng_below(&rng, (uint64_t)(hi - lo));
        memcpy(res + i * d, x + row * d, (size_t)d * sizeof(float));
    }
    if (coarse_assign(idx, res, n_sample, assign) != 0) goto done;
    if (ivf->by_residual) {
        const float *cent = (const float *)ivf->centroids.ptr;
        for (int64_t i = 0; i < n_sample; i++)
            for (int t = 0; t < d; t++) res[i * d + t] -= cent[(int64_t)assign[i] * d + t];
    }
    if (cc_buf_resize(&ivf->books, (size_t)ivf->M * CC_PQ_KSUB * ivf->pq.dsub * sizeof(float), "PQ books") != 0)
        goto done;
    if (cc_pq_train(d, ivf->M, res, n_sample, idx->seed + 17, (float *)ivf->books.ptr,
                    (double)n_sample * d * CC_PQ_KSUB >= IVF_PROGRESS_MIN_WORK) != 0)
        goto done;
    rc = prepare_derived(idx);
done:
    cc_free_aligned(res);
    free(assign);
    return rc;
}

/* ------------------------------------------------------------------ adding */

/* Appends count PQ codes (row-major, M bytes each) to a list, keeping the block layout. */
static int list_append_codes(ivf_list *L, int M, const uint8_t *rows, int64_t count) {
    int64_t old = L->size, size = old + count;
    int64_t nfull = old / CC_PQ_BLOCK, r = old - nfull * CC_PQ_BLOCK;
    uint8_t *tmp = cc_malloc((size_t)(r + count) * M, "PQ list append");
    if (!tmp) return -1;
    const uint8_t *tail = r ? L->data.ptr + nfull * CC_PQ_BLOCK * M : NULL; /* an empty list has no buffer yet */
    for (int64_t e = 0; e < r; e++)
        for (int m = 0; m < M; m++) tmp[e * M + m] = tail[(size_t)m * r + e];
    memcpy(tmp + r * M, rows, (size_t)count * M);
    if (cc_buf_resize(&L->data, (size_t)size * M, "PQ list") != 0) {
        free(tmp);
        return -1;
    }
    for (int64_t e = 0; e < r + count; e++) {
        size_t stride;
        size_t off = code_offset(size, M, nfull * CC_PQ_BLOCK + e, 0, &stride);
        for (int m = 0; m < M; m++) L->data.ptr[off + (size_t)m * stride] = tmp[e * M + m];
    }
    free(tmp);
    L->size = size;
    return 0;
}

static int ivf_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
                   int64_t new_n_slots) {
    (void)labels;
    struct cc_ivf *ivf = ivf_of(idx);
    int d = idx->dim, M = ivf->M;
    size_t eb = entry_bytes(idx);
    if (ivf->refine) {
        size_t bytes;
        if (!cc_mul_size((size_t)new_n_slots, (size_t)d * sizeof(float), &bytes) ||
            cc_buf_resize(&idx->vectors, bytes, "re-ranking vectors") != 0)
            return -1;
    }
    int32_t *assign = cc_malloc((size_t)n * sizeof(int32_t), "IVF assignment");
    uint8_t *codes = M ? cc_malloc((size_t)n * M, "PQ codes") : NULL;
    int64_t *start = cc_calloc((size_t)ivf->nlist + 1, sizeof(int64_t), "IVF add buckets");
    int64_t *order = cc_malloc((size_t)n * sizeof(int64_t), "IVF add order");
    float *res = M && ivf->by_residual ? cc_malloc_aligned((size_t)(n < IVF_ENCODE_CHUNK ? n : IVF_ENCODE_CHUNK) * d * sizeof(float),
                                                           "IVF residuals")
                                       : NULL;
    int rc = -1;
    if (!assign || (M && !codes) || !start || !order || (M && ivf->by_residual && !res)) goto done;
    if (coarse_assign(idx, x, n, assign) != 0) goto done;
    if (M) {
        const float *cent = (const float *)ivf->centroids.ptr;
        cc_progress progress;
        int show = n >= IVF_PROGRESS_MIN_ADD;
        if (show) cc_progress_start(&progress, "IVF-PQ encode", n, "vec");
        for (int64_t c0 = 0; c0 < n; c0 += IVF_ENCODE_CHUNK) {
            int64_t cn = n - c0 < IVF_ENCODE_CHUNK ? n - c0 : IVF_ENCODE_CHUNK;
            const float *src = x + c0 * d;
            if (ivf->by_residual) {
#pragma omp parallel for schedule(static)
                for (int64_t i = 0; i < cn; i++) {
                    const float *c = cent + (int64_t)assign[c0 + i] * d;
                    for (int t = 0; t < d; t++) res[i * d + t] = src[i * d + t] - c[t];
                }
                src = res;
            }
            cc_pq_encode(&ivf->pq, src, cn, codes + c0 * M);
            if (show) cc_progress_update(&progress, c0 + cn);
        }
        if (show) cc_progress_finish(&progress);
    }
    /* bucket by list */
    for (int64_t i = 0; i < n; i++) start[assign[i] + 1]++;
    for (int l = 0; l < ivf->nlist; l++) start[l + 1] += start[l];
    {
        int64_t *fill = cc_malloc((size_t)ivf->nlist * sizeof(int64_t), "IVF add fill");
        if (!fill) goto done;
        memcpy(fill, start, (size_t)ivf->nlist * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++) order[fill[assign[i]]++] = i;
        free(fill);
    }
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(| : failed)
    for (int l = 0; l < ivf->nlist; l++) {
        int64_t count = start[l + 1] - start[l];
        if (count == 0) continue;
        ivf_list *L = &ivf->lists[l];
        size_t old_slots = L->slots.size;
        if (cc_buf_resize(&L->slots, old_slots + (size_t)count * 4, "IVF list slots") != 0) {
            failed = 1;
            continue;
        }
        uint32_t *ls = (uint32_t *)(L->slots.ptr + old_slots);
        for (int64_t j = 0; j < count; j++) ls[j] = (uint32_t)slots[order[start[l] + j]];
        if (M) {
            uint8_t *rows = malloc((size_t)count * M);
            if (!rows) {
                failed = 1;
                continue;
            }
            for (int64_t j = 0; j < count; j++) memcpy(rows + j * M, codes + order[start[l] + j] * M, (size_t)M);
            if (list_append_codes(L, M, rows, count) != 0) failed = 1;
            free(rows);
        } else {
            if (cc_buf_resize(&L->data, (size_t)(L->size + count) * eb, "IVF list vectors") != 0) {
                failed = 1;
                continue;
            }
            for (int64_t j = 0; j < count; j++)
                memcpy(L->data.ptr + (size_t)(L->size + j) * eb, x + order[start[l] + j] * d, eb);
            L->size += count;
        }
    }
    if (failed) {
        cc_set_error("IVF add: out of memory growing the lists");
        goto done;
    }
    if (ivf->refine) {
        float *vec = (float *)idx->vectors.ptr;
        for (int64_t i = 0; i < n; i++) memcpy(vec + slots[i] * d, x + i * d, (size_t)d * sizeof(float));
    }
    rc = 0;
done:
    free(assign);
    free(codes);
    free(start);
    free(order);
    cc_free_aligned(res);
    return rc;
}

/* ------------------------------------------------------------------ removing, reconstructing */

static int ivf_remove(cc_index *idx, const uint64_t *doomed) {
    struct cc_ivf *ivf = ivf_of(idx);
    int M = ivf->M;
    size_t eb = entry_bytes(idx);
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(| : failed)
    for (int l = 0; l < ivf->nlist; l++) {
        ivf_list *L = &ivf->lists[l];
        const uint32_t *ls = (const uint32_t *)L->slots.ptr;
        int64_t hits = 0;
        for (int64_t e = 0; e < L->size; e++) hits += (doomed[ls[e] >> 6] >> (ls[e] & 63)) & 1;
        if (!hits) continue;
        int64_t keep = L->size - hits;
        uint32_t *new_slots = malloc((size_t)(keep ? keep : 1) * 4);
        uint8_t *rows = malloc((size_t)(keep ? keep : 1) * eb);
        if (!new_slots || !rows) {
            free(new_slots);
            free(rows);
            failed = 1;
            continue;
        }
        int64_t k = 0;
        for (int64_t e = 0; e < L->size; e++) {
            if ((doomed[ls[e] >> 6] >> (ls[e] & 63)) & 1) continue;
            new_slots[k] = ls[e];
            if (M) {
                size_t stride;
                size_t off = code_offset(L->size, M, e, 0, &stride);
                for (int m = 0; m < M; m++) rows[k * M + m] = L->data.ptr[off + (size_t)m * stride];
            } else {
                memcpy(rows + k * eb, L->data.ptr + e * eb, eb);
            }
            k++;
        }
        /* rewrite in place (a mapped list is private copy-on-write) */
        memcpy(L->slots.ptr, new_slots, (size_t)keep * 4);
        L->slots.size = (size_t)keep * 4;
        L->size = 0;
        L->data.size = 0;
        if (M) {
            if (keep && list_append_codes(L, M, rows, keep) != 0) failed = 1;
        } else {
            memcpy(L->data.ptr, rows, (size_t)keep * eb);
            L->data.size = (size_t)keep * eb;
            L->size = keep;
        }
        free(new_slots);
        free(rows);
    }
    if (failed) {
        cc_set_error("IVF remove: out of memory");
        return -1;
    }
    return 0;
}

static int ivf_reconstruct(const cc_index *idx, int64_t slot, float *out) {
    const struct cc_ivf *ivf = ivf_of(idx);
    int d = idx->dim;
    for (int l = 0; l < ivf->nlist; l++) {
        const ivf_list *L = &ivf->lists[l];
        const uint32_t *ls = (const uint32_t *)L->slots.ptr;
        for (int64_t e = 0; e < L->size; e++) {
            if (ls[e] != (uint32_t)slot) continue;
            if (!ivf->M) {
                memcpy(out, L->data.ptr + (size_t)e * d * sizeof(float), (size_t)d * sizeof(float));
                return 0;
            }
            size_t stride;
            size_t off = code_offset(L->size, ivf->M, e, 0, &stride);
            cc_pq_decode(&ivf->pq, L->data.ptr + off, stride, out);
            if (ivf->by_residual) {
                const float *c = (const float *)ivf->centroids.ptr + (size_t)l * d;
                for (int t = 0; t < d; t++) out[t] += c[t];
            }
            return 0;
        }
    }
    cc_set_error("IVF: slot %lld not found in any list", (long long)slot);
    return -1;
}

/* ------------------------------------------------------------------ searching */

#define IVF_SPARSE_FILTER 0.25 /* below this allowed fraction, entries are filtered before their distance */

/* Fraction of the live items a filter allows (popcount of its words, over the live count). */
static double filter_fraction(const cc_index *idx, const cc_id_filter *f) {
    int64_t set = 0;
    for (int64_t w = 0; w < (f->n_bits + 63) / 64; w++) {
        uint64_t word = f->words[w];
        if (w == f->n_bits / 64) word &= (f->n_bits & 63) ? (1ull << (f->n_bits & 63)) - 1 : 0;
        set += __builtin_popcountll(word);
    }
    return idx->n_live ? fmin(1.0, (double)set / (double)idx->n_live) : 1.0;
}

typedef struct query_scan {
    const cc_index *idx;
    const cc_id_filter *filter;
    int sparse_filter; /* the filter allows few ids: test it before computing a distance */
    cc_topk heap;
    int fast;
    float *table;    /* similarity table [M][256] for the current list */
    uint8_t *qtable; /* its 8-bit version */
    float qoffset, qscale;
} query_scan;

static void prepare_fast(query_scan *qs, int M) {
    if (qs->fast) cc_pq_quantize_table(qs->table, M, qs->qtable, &qs->qoffset, &qs->qscale);
}

static void scan_pq_list(query_scan *qs, const ivf_list *L, float base) {
    const cc_index *idx = qs->idx;
    int M = ivf_of(idx)->M;
    int64_t size = L->size, nfull = size / CC_PQ_BLOCK;
    const uint32_t *ls = (const uint32_t *)L->slots.ptr;
    /* a code's similarity is within bound of its 8-bit estimate (see pq.h) */
    float bound = 0.5f * (float)M * qs->qscale * 1.001f +
                  1e-5f * (fabsf(base) + fabsf(qs->qoffset) + (float)M * 255.0f * qs->qscale);
    for (int64_t b = 0; b * CC_PQ_BLOCK < size; b++) {
        int count = b < nfull ? CC_PQ_BLOCK : (int)(size - nfull * CC_PQ_BLOCK);
        size_t stride = (size_t)count;
        if (b < nfull) stride = CC_PQ_BLOCK;
        const uint8_t *block = L->data.ptr + (size_t)(b * CC_PQ_BLOCK * M);
        uint64_t mask = count == 64 ? ~0ull : ((1ull << count) - 1);
        float theta = cc_topk_threshold(&qs->heap);
        if (qs->fast && theta > -INFINITY) {
            float t = (theta - base - qs->qoffset - bound) / qs->qscale;
            if (t >= 65535.0f) continue;
            if (t >= 0) mask = cc_pq_scan_block_mask(block, stride, M, count, qs->qtable, (uint16_t)t);
        }
        while (mask) {
            int lane = __builtin_ctzll(mask);
            mask &= mask - 1;
            int64_t slot = ls[b * CC_PQ_BLOCK + lane];
            if (qs->sparse_filter && !cc_slot_ok(idx, qs->filter, slot)) continue;
            float sim = base + cc_pq_code_sim(block + lane, stride, M, qs->table);
            if (sim > cc_topk_threshold(&qs->heap) && cc_slot_ok(idx, qs->filter, slot)) cc_topk_push(&qs->heap, sim, slot);
        }
    }
}

static void scan_flat_list(query_scan *qs, const ivf_list *L, const float *q) {
    const cc_index *idx = qs->idx;
    const cc_dist_kernels *dk = cc_dist();
    size_t d = (size_t)idx->dim;
    int ip = idx->metric == CC_METRIC_IP;
    const uint32_t *ls = (const uint32_t *)L->slots.ptr;
    const float *rows = (const float *)L->data.ptr;
    if (qs->sparse_filter) { /* few allowed: the filter first, then one distance per allowed entry */
        for (int64_t e = 0; e < L->size; e++) {
            if (!cc_slot_ok(idx, qs->filter, ls[e])) continue;
            float s = ip ? dk->ip(q, rows + e * (int64_t)d, d) : -dk->l2sq(q, rows + e * (int64_t)d, d);
            if (s > cc_topk_threshold(&qs->heap)) cc_topk_push(&qs->heap, s, ls[e]);
        }
        return;
    }
    float scores[IVF_FLAT_SCAN_BLOCK];
    for (int64_t b = 0; b < L->size; b += IVF_FLAT_SCAN_BLOCK) {
        size_t count = (size_t)(L->size - b < IVF_FLAT_SCAN_BLOCK ? L->size - b : IVF_FLAT_SCAN_BLOCK);
        if (ip) dk->ip_rows(q, rows + b * (int64_t)d, count, d, scores);
        else dk->l2sq_rows(q, rows + b * (int64_t)d, count, d, scores);
        float threshold = cc_topk_threshold(&qs->heap);
        for (size_t i = 0; i < count; i++) {
            float sim = ip ? scores[i] : -scores[i];
            if (sim > threshold && cc_slot_ok(idx, qs->filter, ls[b + (int64_t)i])) {
                cc_topk_push(&qs->heap, sim, ls[b + (int64_t)i]);
                threshold = cc_topk_threshold(&qs->heap);
            }
        }
    }
}

/* One query over its probed lists into qs->heap. */
/* ip_table holds <q_m, c_mj> already (cc_pq_ip_tables) for PQ types. */
static void search_one(query_scan *qs, const float *q, const int32_t *lists, const float *list_sims, int nprobe,
                       float *ip_table, float *scratch) {
    const cc_index *idx = qs->idx;
    const struct cc_ivf *ivf = ivf_of(idx);
    int M = ivf->M, d = idx->dim;
    size_t tsize = (size_t)M * CC_PQ_KSUB;
    int ip = idx->metric == CC_METRIC_IP;
    if (!M) {
        for (int p = 0; p < nprobe; p++)
            if (lists[p] >= 0) scan_flat_list(qs, &ivf->lists[lists[p]], q);
        return;
    }
    const cc_dist_kernels *dk = cc_dist();
    if (ip || !ivf->by_residual) {
        /* one table for all lists: <q_m, c_mj> (IP) or -||q_m - c_mj||² + ||q_m||² (L2, no residual) */
        float base = 0;
        if (!ip) {
            for (size_t j = 0; j < tsize; j++) ip_table[j] = 2.0f * ip_table[j] - ivf->pq.code_norms[j];
            base = -dk->ip(q, q, (size_t)d);
        }
        qs->table = ip_table;
        prepare_fast(qs, M);
        for (int p = 0; p < nprobe; p++) {
            if (lists[p] < 0) continue;
            scan_pq_list(qs, &ivf->lists[lists[p]], base + (ivf->by_residual ? list_sims[p] : 0.0f));
        }
        return;
    }
    /* L2 with residuals: ||q - c - r||² = ||q - c||² + (||r||² + 2<c, r>) - 2<q, r> */
    for (int p = 0; p < nprobe; p++) {
        if (lists[p] < 0) continue;
        int l = lists[p];
        float base = list_sims[p]; /* -||q - c||² */
        if (ivf->precomputed) {
            const float *pre = ivf->precomputed + (size_t)l * tsize;
            for (size_t j = 0; j < tsize; j++) scratch[j] = 2.0f * ip_table[j] - pre[j];
        } else {
            /* table of the residual query: -||(q - c)_m - c_mj||² + ||(q - c)_m||² */
            float *rq = scratch + tsize;
            const float *c = (const float *)ivf->centroids.ptr + (size_t)l * d;
            for (int t = 0; t < d; t++) rq[t] = q[t] - c[t];
            cc_pq_ip_table(&ivf->pq, rq, scratch);
            for (size_t j = 0; j < tsize; j++) scratch[j] = 2.0f * scratch[j] - ivf->pq.code_norms[j];
            base = -dk->ip(rq, rq, (size_t)d);
        }
        qs->table = scratch;
        prepare_fast(qs, M);
        scan_pq_list(qs, &ivf->lists[l], base);
    }
}

static int ivf_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                      int64_t *out_slots, float *out_sims) {
    const struct cc_ivf *ivf = ivf_of(idx);
    int d = idx->dim, M = ivf->M;
    int nprobe = ivf->by_residual ? ctx->nprobe : 1;
    double allowed = ctx->filter ? filter_fraction(idx, ctx->filter) : 1.0;
    /* a filter keeping a fraction f of the items: the k best allowed lie about 1/f times deeper, so
     * 1/f times more lists are probed (their disallowed entries cost a bit test, not a distance) */
    if (ctx->filter && ivf->by_residual) nprobe = allowed > 0 ? (int)fmin((double)ivf->nlist, ceil(nprobe / allowed)) : 1;
    if (nprobe > ivf->nlist) nprobe = ivf->nlist;
    int heap_k = k;
    if (ivf->refine) {
        int64_t want = (int64_t)k * ctx->rerank;
        heap_k = want > idx->n_live ? (int)idx->n_live : (int)want;
        if (heap_k < k) heap_k = k;
    }
    int32_t *lists = cc_malloc((size_t)nq * nprobe * sizeof(int32_t), "IVF probes");
    float *list_sims = cc_malloc((size_t)nq * nprobe * sizeof(float), "IVF probes");
    if (!lists || !list_sims) {
        free(lists);
        free(list_sims);
        return -1;
    }
    if (ivf->by_residual) {
        if (cc_nearest_centroids(q, nq, d, (const float *)ivf->centroids.ptr, ivf->centroid_norms, ivf->nlist,
                                 idx->metric == CC_METRIC_IP, nprobe, lists, list_sims) != 0) {
            free(lists);
            free(list_sims);
            return -1;
        }
    } else {
        memset(lists, 0, (size_t)nq * nprobe * sizeof(int32_t));
        memset(list_sims, 0, (size_t)nq * nprobe * sizeof(float));
    }
    size_t tsize = (size_t)(M ? M : 1) * CC_PQ_KSUB;
    int fast = M && cc_cpu_has_vbmi();
    /* the plain table <q_m, c_mj> is needed unless L2 residual tables are built per list */
    int need_table = M && (idx->metric == CC_METRIC_IP || !ivf->by_residual || ivf->precomputed);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *ip_tables = cc_malloc_aligned(IVF_TABLE_GROUP * tsize * sizeof(float), "PQ tables");
        float *scratch = cc_malloc_aligned((tsize + (size_t)d) * sizeof(float), "PQ table");
        uint8_t *qtable = cc_malloc_aligned(tsize, "PQ 8-bit table");
        float *heap_sims = ivf->refine ? cc_malloc((size_t)heap_k * sizeof(float), "re-rank candidates") : NULL;
        int64_t *heap_ids = ivf->refine ? cc_malloc((size_t)heap_k * sizeof(int64_t), "re-rank candidates") : NULL;
        if (!ip_tables || !scratch || !qtable || (ivf->refine && (!heap_sims || !heap_ids))) failed = 1;
        /* queries in groups: their PQ tables are computed together (shared codebook reads) */
#pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < nq; g += IVF_TABLE_GROUP) {
            if (failed) continue;
            int group = nq - g < IVF_TABLE_GROUP ? (int)(nq - g) : IVF_TABLE_GROUP;
            const float *qp[IVF_TABLE_GROUP];
            float *tp[IVF_TABLE_GROUP];
            for (int a = 0; a < group; a++) {
                qp[a] = q + (g + a) * d;
                tp[a] = ip_tables + (size_t)a * tsize;
            }
            if (need_table) cc_pq_ip_tables(&ivf->pq, group, qp, tp);
            for (int a = 0; a < group; a++) {
                int64_t i = g + a;
                query_scan qs = {0};
                qs.idx = idx;
                qs.filter = ctx->filter;
                qs.sparse_filter = ctx->filter && allowed < IVF_SPARSE_FILTER;
                qs.fast = fast;
                qs.qtable = qtable;
                if (ivf->refine) cc_topk_init(&qs.heap, heap_sims, heap_ids, heap_k);
                else cc_topk_init(&qs.heap, out_sims + i * k, out_slots + i * k, k);
                search_one(&qs, qp[a], lists + i * nprobe, list_sims + i * nprobe, nprobe, tp[a], scratch);
                if (ivf->refine) cc_rerank_exact(idx, qp[a], heap_ids, qs.heap.size, k, out_slots + i * k, out_sims + i * k);
                else cc_topk_finish(&qs.heap);
            }
        }
        cc_free_aligned(ip_tables);
        cc_free_aligned(scratch);
        cc_free_aligned(qtable);
        free(heap_sims);
        free(heap_ids);
    }
    free(lists);
    free(list_sims);
    if (failed) {
        cc_set_error("IVF search: out of memory for per-thread tables");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ file */

static int ivf_save(const cc_index *idx, cc_writer *w) {
    const struct cc_ivf *ivf = ivf_of(idx);
    if (idx->trained && ivf->by_residual) {
        if (cc_writer_section(w, "centroid") != 0 || cc_writer_write(w, ivf->centroids.ptr, ivf->centroids.size) != 0)
            return -1;
    }
    if (idx->trained && ivf->M) {
        if (cc_writer_section(w, "pqbook") != 0 || cc_writer_write(w, ivf->books.ptr, ivf->books.size) != 0) return -1;
    }
    if (cc_writer_section(w, "listsize") != 0) return -1;
    for (int l = 0; l < ivf->nlist; l++) {
        uint64_t size = (uint64_t)ivf->lists[l].size;
        if (cc_writer_write(w, &size, 8) != 0) return -1;
    }
    if (cc_writer_section(w, "listslot") != 0) return -1;
    for (int l = 0; l < ivf->nlist; l++)
        if (cc_writer_write(w, ivf->lists[l].slots.ptr, (size_t)ivf->lists[l].size * 4) != 0) return -1;
    if (cc_writer_section(w, "listdata") != 0) return -1;
    size_t eb = entry_bytes(idx);
    for (int l = 0; l < ivf->nlist; l++)
        if (cc_writer_write(w, ivf->lists[l].data.ptr, (size_t)ivf->lists[l].size * eb) != 0) return -1;
    return 0;
}

static int ivf_load(cc_index *idx, const cc_reader *r) {
    struct cc_ivf *ivf = ivf_of(idx);
    int d = idx->dim;
    const uint8_t *p;
    if (ivf->refine && cc_load_float_rows(idx, r, 0) != 0) return -1;
    if (idx->trained && ivf->by_residual) {
        size_t bytes = (size_t)ivf->nlist * d * sizeof(float);
        if (cc_reader_get(r, "centroid", bytes, 1, &p, NULL) < 0) return -1;
        cc_buf_view(&ivf->centroids, p, bytes);
    }
    if (idx->trained && ivf->M) {
        size_t bytes = (size_t)ivf->M * CC_PQ_KSUB * ivf->pq.dsub * sizeof(float);
        if (cc_reader_get(r, "pqbook", bytes, 1, &p, NULL) < 0) return -1;
        cc_buf_view(&ivf->books, p, bytes);
    }
    if (idx->trained) {
        if (cc_check_finite((const float *)ivf->centroids.ptr, ivf->by_residual ? ivf->nlist : 0, d, "centroids") != 0 ||
            cc_check_finite((const float *)ivf->books.ptr, ivf->M ? (int64_t)ivf->M * CC_PQ_KSUB : 0, ivf->pq.dsub,
                            "PQ codebooks") != 0) {
            cc_prefix_error("%s", r->path);
            return -1;
        }
    }
    const uint8_t *sizes_p, *slots_p, *data_p;
    if (cc_reader_get(r, "listsize", (size_t)ivf->nlist * 8, 1, &sizes_p, NULL) < 0) return -1;
    const uint64_t *sizes = (const uint64_t *)sizes_p;
    uint64_t total = 0;
    for (int l = 0; l < ivf->nlist; l++) {
        if (sizes[l] > (uint64_t)idx->n_live || total + sizes[l] > (uint64_t)idx->n_live) {
            cc_set_error("%s: inverted lists hold more entries than the %lld vectors in the index", r->path,
                         (long long)idx->n_live);
            return -1;
        }
        total += sizes[l];
    }
    if (total != (uint64_t)idx->n_live) {
        cc_set_error("%s: inverted lists hold %llu entries, the header says %lld vectors", r->path,
                     (unsigned long long)total, (long long)idx->n_live);
        return -1;
    }
    size_t eb = entry_bytes(idx);
    if (cc_reader_get(r, "listslot", (size_t)total * 4, 1, &slots_p, NULL) < 0) return -1;
    if (cc_reader_get(r, "listdata", (size_t)total * eb, 1, &data_p, NULL) < 0) return -1;
    /* every live slot exactly once */
    uint64_t *seen = cc_calloc(((size_t)idx->n_slots + 63) / 64 + 1, 8, "slot check");
    if (!seen) return -1;
    const uint32_t *all_slots = (const uint32_t *)slots_p;
    for (uint64_t e = 0; e < total; e++) {
        uint32_t s = all_slots[e];
        if ((int64_t)s >= idx->n_slots || cc_slot_removed(idx, s) || ((seen[s >> 6] >> (s & 63)) & 1)) {
            cc_set_error("%s: inverted list entry %llu refers to slot %u, which is %s", r->path,
                         (unsigned long long)e, s,
                         (int64_t)s >= idx->n_slots ? "out of range" : cc_slot_removed(idx, s) ? "removed" : "listed twice");
            free(seen);
            return -1;
        }
        seen[s >> 6] |= 1ull << (s & 63);
    }
    free(seen);
    uint64_t at = 0;
    for (int l = 0; l < ivf->nlist; l++) {
        ivf_list *L = &ivf->lists[l];
        L->size = (int64_t)sizes[l];
        cc_buf_view(&L->slots, slots_p + at * 4, (size_t)sizes[l] * 4);
        cc_buf_view(&L->data, data_p + at * eb, (size_t)sizes[l] * eb);
        at += sizes[l];
    }
    if (idx->trained && prepare_derived(idx) != 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------ parameters and table */

static int ivf_set_param(cc_index *idx, const char *name, int64_t value) {
    const struct cc_ivf *ivf = ivf_of(idx);
    if (!strcmp(name, "nprobe")) {
        if (value < 1) return CC_PARAM_BAD_VALUE;
        int clamped = value > ivf->nlist;
        idx->nprobe = clamped ? ivf->nlist : (int)value;
        return clamped;
    }
    if (!strcmp(name, "rerank")) {
        if (!ivf->refine) return CC_PARAM_NOT_APPLICABLE;
        if (value < 1 || value > CC_INDEX_MAX_RERANK) return CC_PARAM_BAD_VALUE;
        idx->rerank = (int)value;
        return 0;
    }
    return CC_PARAM_NOT_APPLICABLE;
}

static const float *ivf_slot_vector(const cc_index *idx, int64_t slot) {
    return (const float *)idx->vectors.ptr + slot * idx->dim; /* RFlat only (exact_vectors) */
}

static int ivf_tune_space(const cc_index *idx, int k, cc_tune_space *out) {
    (void)k;
    const struct cc_ivf *ivf = ivf_of(idx);
    out->knob = "nprobe";
    out->lo = 1;
    out->hi = ivf->nlist;
    out->exact_at_hi = !ivf->M; /* IVF-Flat visiting every list */
    out->rerank = ivf->refine;
    return 0;
}

const cc_index_ops cc_ivf_ops = {
    .name = "IVF",
    .init = ivf_init,
    .free = ivf_free,
    .train = ivf_train,
    .add = ivf_add,
    .search = ivf_search,
    .remove = ivf_remove,
    .reconstruct = ivf_reconstruct,
    .slot_vector = ivf_slot_vector,
    .save = ivf_save,
    .load = ivf_load,
    .memory = ivf_memory,
    .get_param = ivf_get_param,
    .set_param = ivf_set_param,
    .tune_space = ivf_tune_space,
};
