/* pq_fastscan.c — 4-bit fast-scan PQ: training and encoding, packing into 32-vector blocks, the
 * quantised look-up tables, the block kernels (portable C reference, AVX2 vpshufb, AVX-512BW
 * vpshufb on zmm; picked at run time). The index type built on them is fastscan.c; the layout
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

#define PQ4_TRAIN_MAX_POINTS 32768 /* k-means sample per sub-space: 2048 per centroid, ample for 16 */
#define PQ4_KMEANS_ITERATIONS 25

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

/* Sub-space m's k-means on its columns of n_train evenly spread rows (sub: n_train * dsub scratch). */
static int train_subspace(cc_pq4 *pq, const float *x, int64_t n, int64_t n_train, int m, uint64_t seed, float *sub) {
    int d = pq->d, dsub = pq->dsub;
    for (int64_t i = 0; i < n_train; i++) {
        int64_t row = n_train == n ? i : i * n / n_train; /* the same rows for every sub-space */
        memcpy(sub + i * dsub, x + row * d + (int64_t)m * dsub, (size_t)dsub * sizeof(float));
    }
    cc_kmeans_params kp;
    cc_kmeans_default_params(&kp);
    kp.niter = PQ4_KMEANS_ITERATIONS;
    kp.max_points_per_centroid = 0;
    kp.init = CC_KMEANS_INIT_PLUSPLUS;
    kp.seed = seed + 7919u * (uint64_t)m;
    return cc_kmeans(sub, n_train, dsub, CC_PQ4_KSUB, &kp, pq->books + (size_t)m * CC_PQ4_KSUB * dsub, NULL);
}

/* Threads over sub-spaces: each k-means is small (16 centroids of dsub dimensions), so its own
 * parallel regions (serial when nested) would cost more in barriers than they save. */
int cc_pq4_train(cc_pq4 *pq, const float *x, int64_t n, uint64_t seed) {
    if (n < CC_PQ4_KSUB) {
        cc_set_error("fast-scan PQ training needs at least %d vectors, got %lld", CC_PQ4_KSUB, (long long)n);
        return -1;
    }
    int64_t n_train = n < PQ4_TRAIN_MAX_POINTS ? n : PQ4_TRAIN_MAX_POINTS;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *sub = cc_malloc_aligned((size_t)n_train * (size_t)pq->dsub * sizeof(float), "PQ4 training sample");
        if (!sub) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int m = 0; m < pq->M; m++)
            if (!failed && train_subspace(pq, x, n, n_train, m, seed, sub) != 0) failed = 1;
        cc_free_aligned(sub);
    }
    if (failed) cc_set_error("fast-scan PQ training: k-means of a sub-space failed (out of memory)"); /* per-thread errors */
    return failed ? -1 : 0;
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
            /* NaN (inf - inf: books so large that the table overflows) -> 0, never a bad cast */
            lut[m * 16 + j] = v >= 255 ? 255 : v > 0 ? (uint8_t)v : 0;
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

