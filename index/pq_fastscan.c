/* pq_fastscan.c — 4-bit fast-scan PQ: training and encoding, packing into 32-vector blocks, the
 * quantised look-up tables, the block kernels (portable C reference, AVX2 vpshufb, AVX-512BW
 * vpshufb on zmm; picked at run time), and the exhaustive / IVF / RFlat index on top. The layout
 * and the error bound are described in pq_fastscan.h. */
#include "index/pq_fastscan.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/kmeans.h"
#include "index/topk.h"

#define PQ4_TRAIN_MAX_POINTS 32768 /* k-means sample per sub-space: 2048 per centroid, ample for 16 */
#define PQ4_KMEANS_ITERATIONS 25
#define FS_IVF_KMEANS_ITERATIONS 20
#define FS_IVF_POINTS_PER_CENTROID 64 /* coarse k-means sample (faiss warns below 39) */
#define FS_DEFAULT_NPROBE 8
#define FS_DEFAULT_RERANK 4

/* ------------------------------------------------------------------ quantiser */

int cc_pq4_init(cc_pq4 *pq, int d, int M) {
    memset(pq, 0, sizeof *pq);
    if (M < 2 || M > CC_PQ4_MAX_M || M % 2 != 0 || d <= 0 || d % M != 0) {
        cc_set_error("fast-scan PQ: M = %d must be even, at most %d and divide the dimension %d", M, CC_PQ4_MAX_M, d);
        return -1;
    }
    pq->d = d;
    pq->M = M;
    pq->dsub = d / M;
    pq->books = cc_malloc_aligned((size_t)M * CC_PQ4_KSUB * (size_t)pq->dsub * sizeof(float), "PQ4 books");
    return pq->books ? 0 : -1;
}

void cc_pq4_release(cc_pq4 *pq) {
    cc_free_aligned(pq->books);
    pq->books = NULL;
}

int cc_pq4_train(cc_pq4 *pq, const float *x, int64_t n, uint64_t seed) {
    if (n < CC_PQ4_KSUB) {
        cc_set_error("fast-scan PQ training needs at least %d vectors, got %lld", CC_PQ4_KSUB, (long long)n);
        return -1;
    }
    int d = pq->d, dsub = pq->dsub;
    int64_t n_train = n < PQ4_TRAIN_MAX_POINTS ? n : PQ4_TRAIN_MAX_POINTS;
    float *sub = cc_malloc_aligned((size_t)n_train * (size_t)dsub * sizeof(float), "PQ4 training sample");
    if (!sub) return -1;
    cc_kmeans_params kp;
    cc_kmeans_default_params(&kp);
    kp.niter = PQ4_KMEANS_ITERATIONS;
    kp.max_points_per_centroid = 0;
    kp.init = CC_KMEANS_INIT_PLUSPLUS;
    int rc = 0;
    for (int m = 0; m < pq->M && rc == 0; m++) {
        for (int64_t i = 0; i < n_train; i++) {
            int64_t row = n_train == n ? i : i * n / n_train; /* the same evenly spread rows per sub-space */
            memcpy(sub + i * dsub, x + row * d + (int64_t)m * dsub, (size_t)dsub * sizeof(float));
        }
        kp.seed = seed + 7919u * (uint64_t)m;
        rc = cc_kmeans(sub, n_train, dsub, CC_PQ4_KSUB, &kp, pq->books + (size_t)m * CC_PQ4_KSUB * dsub, NULL);
    }
    cc_free_aligned(sub);
    return rc;
}

static int nearest_centroid(const float *books_m, const float *xs, int dsub) {
    int best = 0;
    float best_d = INFINITY;
    for (int j = 0; j < CC_PQ4_KSUB; j++) {
        const float *c = books_m + (size_t)j * dsub;
        float dist = 0;
        for (int t = 0; t < dsub; t++) dist += (xs[t] - c[t]) * (xs[t] - c[t]);
        if (dist < best_d) best_d = dist, best = j;
    }
    return best;
}

void cc_pq4_encode(const cc_pq4 *pq, const float *x, int64_t n, uint8_t *codes) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int m = 0; m < pq->M; m++)
            codes[i * pq->M + m] = (uint8_t)nearest_centroid(pq->books + (size_t)m * CC_PQ4_KSUB * pq->dsub,
                                                             x + i * pq->d + (int64_t)m * pq->dsub, pq->dsub);
}

void cc_pq4_decode(const cc_pq4 *pq, const uint8_t *code, float *out) {
    for (int m = 0; m < pq->M; m++)
        memcpy(out + (size_t)m * pq->dsub, pq->books + ((size_t)m * CC_PQ4_KSUB + (code[m] & 15)) * pq->dsub,
               (size_t)pq->dsub * sizeof(float));
}

/* ------------------------------------------------------------------ packing */

/* Byte of vector i (0..31 in its block) for sub-quantiser m, and whether it is the high nibble. */
static inline size_t packed_byte(int64_t i, int m, int M, int *high) {
    int64_t block = i / CC_PQ4_BLOCK;
    int in_block = (int)(i % CC_PQ4_BLOCK);
    *high = in_block >= 16;
    return (size_t)block * (size_t)M * 16 + (size_t)(m / 2) * 32 + (size_t)(m % 2) * 16 + (size_t)(in_block & 15);
}

void cc_pq4_pack_code(uint8_t *packed, int64_t i, int M, const uint8_t *code) {
    for (int m = 0; m < M; m++) {
        int high;
        uint8_t *b = packed + packed_byte(i, m, M, &high);
        *b = high ? (uint8_t)((*b & 0x0f) | (code[m] << 4)) : (uint8_t)((*b & 0xf0) | (code[m] & 15));
    }
}

void cc_pq4_unpack_code(const uint8_t *packed, int64_t i, int M, uint8_t *code) {
    for (int m = 0; m < M; m++) {
        int high;
        uint8_t b = packed[packed_byte(i, m, M, &high)];
        code[m] = high ? (uint8_t)(b >> 4) : (uint8_t)(b & 15);
    }
}

/* ------------------------------------------------------------------ tables */

void cc_pq4_table(const cc_pq4 *pq, const float *q, cc_metric metric, float *table) {
    for (int m = 0; m < pq->M; m++) {
        const float *qs = q + (size_t)m * pq->dsub;
        for (int j = 0; j < CC_PQ4_KSUB; j++) {
            const float *c = pq->books + ((size_t)m * CC_PQ4_KSUB + j) * pq->dsub;
            float s = 0;
            if (metric == CC_METRIC_IP)
                for (int t = 0; t < pq->dsub; t++) s += qs[t] * c[t];
            else
                for (int t = 0; t < pq->dsub; t++) s -= (qs[t] - c[t]) * (qs[t] - c[t]);
            table[m * CC_PQ4_KSUB + j] = s;
        }
    }
}

void cc_pq4_quantize_table(const float *table, int M, uint8_t *lut, float *base, float *scale) {
    float max_range = 0;
    double base_sum = 0;
    float mins[CC_PQ4_MAX_M];
    for (int m = 0; m < M; m++) {
        float lo = table[m * 16], hi = lo;
        for (int j = 1; j < 16; j++) lo = fminf(lo, table[m * 16 + j]), hi = fmaxf(hi, table[m * 16 + j]);
        mins[m] = lo;
        base_sum += lo;
        max_range = fmaxf(max_range, hi - lo);
    }
    float s = max_range > 0 ? max_range / 255.0f : 1.0f;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < 16; j++) {
            float v = roundf((table[m * 16 + j] - mins[m]) / s);
            lut[m * 16 + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    *base = (float)base_sum;
    *scale = s;
}

/* ------------------------------------------------------------------ block kernels */

/* The readable definition: unpack each vector's nibbles and add up its table bytes. */
static uint32_t block_scalar(const uint8_t *block, int M, const uint8_t *lut, int32_t threshold, uint16_t *sums) {
    uint32_t mask = 0;
    for (int i = 0; i < CC_PQ4_BLOCK; i++) {
        uint32_t s = 0;
        for (int m = 0; m < M; m++) {
            uint8_t b = block[(m / 2) * 32 + (m % 2) * 16 + (i & 15)];
            s += lut[m * 16 + (i < 16 ? b & 15 : b >> 4)];
        }
        sums[i] = (uint16_t)s;
        if (threshold < 0 || (int32_t)s > threshold) mask |= 1u << i;
    }
    return mask;
}

/* even / odd: 8 u16 sums each of vectors (base + 0, 2, .., 14) and (base + 1, 3, .., 15), summed
 * over both lanes' sub-quantisers already; writes 16 sums in vector order and returns their mask. */
__attribute__((target("avx2"))) static inline uint32_t finish_half(__m128i even, __m128i odd, int32_t threshold,
                                                                   uint16_t *sums) {
    __m128i s0 = _mm_unpacklo_epi16(even, odd), s1 = _mm_unpackhi_epi16(even, odd);
    _mm_storeu_si128((__m128i *)sums, s0);
    _mm_storeu_si128((__m128i *)(sums + 8), s1);
    if (threshold < 0) return 0xffffu;
    if (threshold >= 65535) return 0;
    __m128i t1 = _mm_set1_epi16((short)(uint16_t)(threshold + 1)); /* s > t  <=>  max(s, t + 1) == s */
    __m128i c0 = _mm_cmpeq_epi16(_mm_max_epu16(s0, t1), s0), c1 = _mm_cmpeq_epi16(_mm_max_epu16(s1, t1), s1);
    return (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(c0, c1));
}

/* u16 lanes of acc hold sum(even + 256 * odd) mod 2^16 and odd_acc the exact odd sums: the exact
 * even sums are acc - 256 * odd (mod 2^16), one AND per register saved in the loop. */
__attribute__((target("avx2"))) static uint32_t block_avx2(const uint8_t *block, int M, const uint8_t *lut,
                                                           int32_t threshold, uint16_t *sums) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    __m256i acc_lo = _mm256_setzero_si256(), odd_lo = _mm256_setzero_si256();
    __m256i acc_hi = _mm256_setzero_si256(), odd_hi = _mm256_setzero_si256();
    for (int p = 0; p < M / 2; p++) {
        __m256i codes = _mm256_loadu_si256((const __m256i *)(block + 32 * p));
        __m256i table = _mm256_loadu_si256((const __m256i *)(lut + 32 * p));
        __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(codes, nibble));
        __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(codes, 4), nibble));
        acc_lo = _mm256_add_epi16(acc_lo, lo);
        odd_lo = _mm256_add_epi16(odd_lo, _mm256_srli_epi16(lo, 8));
        acc_hi = _mm256_add_epi16(acc_hi, hi);
        odd_hi = _mm256_add_epi16(odd_hi, _mm256_srli_epi16(hi, 8));
    }
    __m256i even_lo = _mm256_sub_epi16(acc_lo, _mm256_slli_epi16(odd_lo, 8));
    __m256i even_hi = _mm256_sub_epi16(acc_hi, _mm256_slli_epi16(odd_hi, 8));
    /* lane 0 holds the even sub-quantisers, lane 1 the odd ones: add the lanes */
#define LANES(v) _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))
    uint32_t mask = finish_half(LANES(even_lo), LANES(odd_lo), threshold, sums);
    mask |= finish_half(LANES(even_hi), LANES(odd_hi), threshold, sums + 16) << 16;
#undef LANES
    return mask;
}

/* Two pairs (four sub-quantisers, one per 128-bit lane) per zmm; a last single pair is loaded
 * masked (zero table bytes add nothing). */
__attribute__((target("avx512f,avx512bw,avx2"))) static uint32_t block_avx512(const uint8_t *block, int M,
                                                                             const uint8_t *lut, int32_t threshold,
                                                                             uint16_t *sums) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    __m512i acc_lo = _mm512_setzero_si512(), odd_lo = _mm512_setzero_si512();
    __m512i acc_hi = _mm512_setzero_si512(), odd_hi = _mm512_setzero_si512();
    int bytes = M * 16;
    for (int off = 0; off < bytes; off += 64) {
        __m512i codes, table;
        if (off + 64 <= bytes) {
            codes = _mm512_loadu_si512(block + off);
            table = _mm512_loadu_si512(lut + off);
        } else {
            codes = _mm512_maskz_loadu_epi8(0xffffffffull, block + off);
            table = _mm512_maskz_loadu_epi8(0xffffffffull, lut + off);
        }
        __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(codes, nibble));
        __m512i hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(codes, 4), nibble));
        acc_lo = _mm512_add_epi16(acc_lo, lo);
        odd_lo = _mm512_add_epi16(odd_lo, _mm512_srli_epi16(lo, 8));
        acc_hi = _mm512_add_epi16(acc_hi, hi);
        odd_hi = _mm512_add_epi16(odd_hi, _mm512_srli_epi16(hi, 8));
    }
    __m512i even_lo = _mm512_sub_epi16(acc_lo, _mm512_slli_epi16(odd_lo, 8));
    __m512i even_hi = _mm512_sub_epi16(acc_hi, _mm512_slli_epi16(odd_hi, 8));
#define LANES(v)                                                                                      \
    _mm_add_epi16(_mm_add_epi16(_mm512_castsi512_si128(v), _mm512_extracti32x4_epi32(v, 1)),          \
                  _mm_add_epi16(_mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)))
    uint32_t mask = finish_half(LANES(even_lo), LANES(odd_lo), threshold, sums);
    mask |= finish_half(LANES(even_hi), LANES(odd_hi), threshold, sums + 16) << 16;
#undef LANES
    return mask;
}

cc_pq4_block_fn cc_pq4_block_kernel_for(cc_isa isa) {
    if (isa > cc_cpu_isa()) return NULL;
    switch (isa) {
    case CC_ISA_AVX512: return block_avx512;
    case CC_ISA_AVX2: return block_avx2;
    default: return block_scalar;
    }
}

cc_pq4_block_fn cc_pq4_block_kernel(void) { return cc_pq4_block_kernel_for(cc_cpu_isa()); }

/* ------------------------------------------------------------------ factory string */

int cc_fs_parse_desc(const char *desc, cc_fs_desc *out) {
    if (!strstr(desc, "x4fs")) return 0;
    memset(out, 0, sizeof *out);
    const char *p = desc;
    char *end;
    if (strncmp(p, "IVF", 3) == 0) {
        long nlist = strtol(p + 3, &end, 10);
        if (end == p + 3 || *end != ',' || nlist < 1 || nlist > (1 << 20)) goto bad;
        out->nlist = (int)nlist;
        p = end + 1;
    }
    if (strncmp(p, "PQ", 2) != 0) goto bad;
    long M = strtol(p + 2, &end, 10);
    if (end == p + 2 || strncmp(end, "x4fs", 4) != 0) goto bad;
    p = end + 4;
    if (strcmp(p, ",RFlat") == 0) out->refine = 1;
    else if (*p) goto bad;
    if (M < 2 || M > CC_PQ4_MAX_M || M % 2) {
        cc_set_error("index type '%s': M = %ld must be even and at most %d", desc, M, CC_PQ4_MAX_M);
        return -1;
    }
    out->M = (int)M;
    return 1;
bad:
    cc_set_error("index type '%s': expected PQ<M>x4fs, IVF<nlist>,PQ<M>x4fs, optionally followed by ,RFlat", desc);
    return -1;
}

/* ------------------------------------------------------------------ index: build */

cc_fs_index *cc_fs_create(const cc_fs_desc *desc, int d, cc_metric metric) {
    cc_fs_index *fs = cc_calloc(1, sizeof *fs, "fast-scan index");
    if (!fs) return NULL;
    if (cc_pq4_init(&fs->pq, d, desc->M) != 0) {
        free(fs);
        return NULL;
    }
    fs->d = d;
    fs->M = desc->M;
    fs->nlist = desc->nlist;
    fs->refine = desc->refine;
    fs->metric = metric;
    fs->seed = 1234;
    fs->nprobe = desc->nlist < FS_DEFAULT_NPROBE ? (desc->nlist ? desc->nlist : 1) : FS_DEFAULT_NPROBE;
    fs->rerank = FS_DEFAULT_RERANK;
    fs->n_lists = desc->nlist ? desc->nlist : 1;
    fs->lists = cc_calloc((size_t)fs->n_lists, sizeof *fs->lists, "fast-scan lists");
    if (desc->nlist) {
        fs->centroids = cc_malloc_aligned((size_t)desc->nlist * d * sizeof(float), "IVF centroids");
        fs->centroid_norms = cc_malloc_aligned((size_t)desc->nlist * sizeof(float), "IVF centroid norms");
    }
    if (!fs->lists || (desc->nlist && (!fs->centroids || !fs->centroid_norms))) {
        cc_fs_free(fs);
        return NULL;
    }
    return fs;
}

void cc_fs_free(cc_fs_index *fs) {
    if (!fs) return;
    for (int l = 0; l < fs->n_lists && fs->lists; l++) {
        cc_free_aligned(fs->lists[l].codes);
        free(fs->lists[l].rows);
    }
    free(fs->lists);
    cc_pq4_release(&fs->pq);
    cc_free_aligned(fs->centroids);
    cc_free_aligned(fs->centroid_norms);
    free(fs->row_ids);
    free(fs->vectors);
    free(fs);
}

/* Nearest list of each of n vectors (all 0 without IVF). */
static int assign_lists(const cc_fs_index *fs, const float *x, int64_t n, int32_t *lists) {
    if (!fs->nlist) {
        memset(lists, 0, (size_t)n * sizeof *lists);
        return 0;
    }
    float *sims = cc_malloc((size_t)n * sizeof(float), "IVF assignment");
    if (!sims) return -1;
    int rc = cc_nearest_centroids(x, n, fs->d, fs->centroids, fs->centroid_norms, fs->nlist,
                                  fs->metric == CC_METRIC_IP, 1, lists, sims);
    free(sims);
    return rc;
}

/* Rows minus their list's centroid (IVF residuals), or a copy. */
static float *residuals(const cc_fs_index *fs, const float *x, int64_t n, const int32_t *lists) {
    float *r = cc_malloc((size_t)n * fs->d * sizeof(float), "fast-scan residuals");
    if (!r) return NULL;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < fs->d; j++)
            r[i * fs->d + j] = x[i * fs->d + j] - (fs->nlist ? fs->centroids[(size_t)lists[i] * fs->d + j] : 0.0f);
    return r;
}

int cc_fs_train(cc_fs_index *fs, int64_t n, const float *x) {
    if (cc_check_finite(x, n, fs->d, "training vectors") != 0) return -1;
    int d = fs->d;
    if (fs->nlist) {
        if (n < fs->nlist) {
            cc_set_error("IVF%d needs at least %d training vectors, got %lld", fs->nlist, fs->nlist, (long long)n);
            return -1;
        }
        cc_kmeans_params kp;
        cc_kmeans_default_params(&kp);
        kp.niter = FS_IVF_KMEANS_ITERATIONS;
        kp.ip = fs->metric == CC_METRIC_IP;
        kp.max_points_per_centroid = FS_IVF_POINTS_PER_CENTROID;
        kp.seed = fs->seed;
        if (cc_kmeans(x, n, d, fs->nlist, &kp, fs->centroids, NULL) != 0) return -1;
        cc_norms_sq(fs->centroids, (size_t)fs->nlist, (size_t)d, fs->centroid_norms);
    }
    /* PQ on (a sample of) the residuals */
    int64_t n_pq = n < PQ4_TRAIN_MAX_POINTS ? n : PQ4_TRAIN_MAX_POINTS;
    float *sample = cc_malloc((size_t)n_pq * d * sizeof(float), "fast-scan training sample");
    int32_t *lists = cc_malloc((size_t)n_pq * sizeof(int32_t), "fast-scan training lists");
    int rc = -1;
    if (sample && lists) {
        for (int64_t i = 0; i < n_pq; i++) memcpy(sample + i * d, x + (i * n / n_pq) * d, (size_t)d * sizeof(float));
        float *r = NULL;
        if (assign_lists(fs, sample, n_pq, lists) == 0 && (r = residuals(fs, sample, n_pq, lists)))
            rc = cc_pq4_train(&fs->pq, r, n_pq, fs->seed + 17);
        free(r);
    }
    free(sample);
    free(lists);
    if (rc == 0) fs->trained = 1;
    return rc;
}

static int list_reserve(cc_fs_list *list, int M, int64_t n) {
    if (n <= list->cap) return 0;
    int64_t cap = list->cap ? list->cap : CC_PQ4_BLOCK;
    while (cap < n) cap *= 2;
    uint8_t *codes = cc_malloc_aligned(cc_pq4_packed_bytes(cap, M), "fast-scan codes");
    int64_t *rows = cc_realloc(list->rows, (size_t)cap * sizeof(int64_t), "fast-scan rows");
    if (!codes || !rows) {
        cc_free_aligned(codes);
        if (rows) list->rows = rows;
        return -1;
    }
    size_t old = list->cap ? cc_pq4_packed_bytes(list->cap, M) : 0;
    if (old) memcpy(codes, list->codes, old);
    memset(codes + old, 0, cc_pq4_packed_bytes(cap, M) - old);
    cc_free_aligned(list->codes);
    list->codes = codes;
    list->rows = rows;
    list->cap = cap;
    return 0;
}

int cc_fs_add(cc_fs_index *fs, int64_t n, const float *x, const int64_t *ids) {
    if (!fs->trained) {
        cc_set_error("fast-scan index: train before adding");
        return -1;
    }
    if (n <= 0) return 0;
    if (cc_check_finite(x, n, fs->d, "vectors") != 0) return -1;
    int d = fs->d, M = fs->M;
    int64_t need = fs->ntotal + n;
    if (need > fs->cap) {
        int64_t cap = fs->cap ? fs->cap : 1024;
        while (cap < need) cap *= 2;
        int64_t *row_ids = cc_realloc(fs->row_ids, (size_t)cap * sizeof(int64_t), "fast-scan ids");
        if (!row_ids) return -1;
        fs->row_ids = row_ids;
        if (fs->refine) {
            float *v = cc_realloc(fs->vectors, (size_t)cap * d * sizeof(float), "RFlat vectors");
            if (!v) return -1;
            fs->vectors = v;
        }
        fs->cap = cap;
    }
    int32_t *lists = cc_malloc((size_t)n * sizeof(int32_t), "fast-scan assignment");
    uint8_t *codes = cc_malloc((size_t)n * M, "fast-scan codes");
    float *r = NULL;
    int rc = -1;
    if (lists && codes && assign_lists(fs, x, n, lists) == 0 && (r = residuals(fs, x, n, lists))) {
        cc_pq4_encode(&fs->pq, r, n, codes);
        rc = 0;
        for (int64_t i = 0; i < n && rc == 0; i++) {
            cc_fs_list *list = &fs->lists[lists[i]];
            if (list_reserve(list, M, list->n + 1) != 0) {
                rc = -1;
                break;
            }
            int64_t row = fs->ntotal + i;
            cc_pq4_pack_code(list->codes, list->n, M, codes + i * M);
            list->rows[list->n++] = row;
            fs->row_ids[row] = ids ? ids[i] : row;
            if (fs->refine) memcpy(fs->vectors + row * d, x + i * d, (size_t)d * sizeof(float));
        }
        /* all or nothing for the rows: on failure the added codes stay unreachable by count */
        if (rc == 0) fs->ntotal += n;
    }
    free(lists);
    free(codes);
    free(r);
    return rc;
}

/* ------------------------------------------------------------------ index: search */

/* Pushes the candidates of one list (estimated sim = bias + base + scale * sum). */
static void scan_list(const cc_fs_list *list, int M, const uint8_t *lut, float offset, float scale,
                      cc_pq4_block_fn kernel, cc_topk *heap) {
    uint16_t sums[CC_PQ4_BLOCK];
    int64_t nblocks = (list->n + CC_PQ4_BLOCK - 1) / CC_PQ4_BLOCK;
    size_t block_bytes = (size_t)M * 16;
    for (int64_t b = 0; b < nblocks; b++) {
        float thr = cc_topk_threshold(heap);
        int32_t t = -1;
        if (thr > -INFINITY) {
            float ts = (thr - offset) / scale;
            t = ts < 0 ? -1 : ts >= 65535.0f ? 65535 : (int32_t)ts; /* s > floor(ts) for integer s > ts */
        }
        uint32_t mask = kernel(list->codes + (size_t)b * block_bytes, M, lut, t, sums);
        int64_t first = b * CC_PQ4_BLOCK, left = list->n - first;
        if (left < CC_PQ4_BLOCK) mask &= (1u << left) - 1;
        while (mask) {
            int i = __builtin_ctz(mask);
            mask &= mask - 1;
            cc_topk_push(heap, offset + scale * (float)sums[i], list->rows[first + i]);
        }
    }
}

/* Exact re-rank of the candidates in cand (best first, -1 padded) into out (k entries). */
static void rerank_exact(const cc_fs_index *fs, const float *q, const cc_topk *cand, cc_topk *out) {
    const cc_dist_kernels *dk = cc_dist();
    for (int i = 0; i < cand->size; i++) {
        int64_t row = cand->ids[i];
        if (row < 0) continue;
        const float *v = fs->vectors + row * fs->d;
        float s = fs->metric == CC_METRIC_IP ? dk->ip(q, v, (size_t)fs->d) : -dk->l2sq(q, v, (size_t)fs->d);
        cc_topk_push(out, s, row);
    }
}

static void search_one(const cc_fs_index *fs, const float *q, int k, int nprobe, int rerank, const int32_t *probe,
                       const float *probe_sims, float *table, float *qres, uint8_t *lut, float *heap_sims,
                       int64_t *heap_ids, int64_t *out_ids, float *out_scores) {
    cc_pq4_block_fn kernel = cc_pq4_block_kernel();
    int n_cand = fs->refine ? k * rerank : k;
    cc_topk heap;
    cc_topk_init(&heap, heap_sims, heap_ids, n_cand);
    float base = 0, scale = 1;
    int ip = fs->metric == CC_METRIC_IP;
    /* inner product: <q, c + r> = <q, c> + <q, r>, one table for every list; L2 needs q - c */
    if (ip || !fs->nlist) {
        cc_pq4_table(&fs->pq, q, fs->metric, table);
        cc_pq4_quantize_table(table, fs->M, lut, &base, &scale);
    }
    int n_probe = fs->nlist ? nprobe : 1;
    for (int p = 0; p < n_probe; p++) {
        int l = fs->nlist ? probe[p] : 0;
        if (l < 0) continue;
        float bias = 0;
        if (fs->nlist && ip) bias = probe_sims[p];
        else if (fs->nlist) {
            for (int j = 0; j < fs->d; j++) qres[j] = q[j] - fs->centroids[(size_t)l * fs->d + j];
            cc_pq4_table(&fs->pq, qres, fs->metric, table);
            cc_pq4_quantize_table(table, fs->M, lut, &base, &scale);
        }
        scan_list(&fs->lists[l], fs->M, lut, bias + base, scale, kernel, &heap);
    }
    cc_topk_finish(&heap);
    cc_topk final = heap;
    float *fin_sims = heap_sims + n_cand;
    int64_t *fin_ids = heap_ids + n_cand;
    if (fs->refine) {
        cc_topk_init(&final, fin_sims, fin_ids, k);
        rerank_exact(fs, q, &heap, &final);
        cc_topk_finish(&final);
    }
    for (int i = 0; i < k; i++) {
        int64_t row = final.ids[i];
        out_ids[i] = row < 0 ? -1 : fs->row_ids[row];
        if (out_scores) out_scores[i] = ip ? final.sims[i] : -final.sims[i];
    }
}

int cc_fs_search(const cc_fs_index *fs, int64_t nq, const float *q, int k, int nprobe, int rerank,
                 int64_t *out_ids, float *out_scores) {
    if (k <= 0) {
        cc_set_error("fast-scan search: k = %d must be positive", k);
        return -1;
    }
    if (!fs->trained) {
        cc_set_error("fast-scan index: not trained");
        return -1;
    }
    nprobe = nprobe > 0 ? nprobe : fs->nprobe;
    if (fs->nlist && nprobe > fs->nlist) nprobe = fs->nlist;
    rerank = rerank > 0 ? rerank : fs->rerank;
    int n_cand = fs->refine ? k * rerank : k;
    int32_t *probe = NULL;
    float *probe_sims = NULL;
    if (fs->nlist) {
        probe = cc_malloc((size_t)nq * nprobe * sizeof(int32_t), "IVF probes");
        probe_sims = cc_malloc((size_t)nq * nprobe * sizeof(float), "IVF probe similarities");
        if (!probe || !probe_sims ||
            cc_nearest_centroids(q, nq, fs->d, fs->centroids, fs->centroid_norms, fs->nlist,
                                 fs->metric == CC_METRIC_IP, nprobe, probe, probe_sims) != 0) {
            free(probe);
            free(probe_sims);
            return -1;
        }
    }
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *table = malloc((size_t)fs->M * 16 * sizeof(float));
        float *qres = malloc((size_t)fs->d * sizeof(float));
        uint8_t *lut = cc_malloc_aligned((size_t)fs->M * 16, "fast-scan table");
        float *heap_sims = malloc((size_t)(n_cand + k) * sizeof(float));
        int64_t *heap_ids = malloc((size_t)(n_cand + k) * sizeof(int64_t));
        if (!table || !qres || !lut || !heap_sims || !heap_ids) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < nq; i++) {
            if (failed) continue;
            search_one(fs, q + i * fs->d, k, nprobe, rerank, probe ? probe + i * nprobe : NULL,
                       probe_sims ? probe_sims + i * nprobe : NULL, table, qres, lut, heap_sims, heap_ids,
                       out_ids + i * k, out_scores ? out_scores + i * k : NULL);
        }
        free(table);
        free(qres);
        cc_free_aligned(lut);
        free(heap_sims);
        free(heap_ids);
    }
    free(probe);
    free(probe_sims);
    if (failed) cc_set_error("fast-scan search: out of memory");
    return failed ? -1 : 0;
}
