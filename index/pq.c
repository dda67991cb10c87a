/* pq.c — product quantiser: k-means per sub-space, SIMD distance tables, encoding through the
 * tables, and the scalar and AVX-512 VBMI code scanners. See pq.h for the layout and the bound. */
#include "index/pq.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/progress.h"
#include "engine/util.h"
#include "index/distance.h"
#include "index/kmeans.h"

#define PQ_TRAIN_MAX_POINTS (CC_PQ_KSUB * 256) /* k-means sample per sub-quantiser, as faiss */
#define PQ_KMEANS_ITERATIONS 25

int cc_pq_prepare(cc_pq *pq) {
    size_t table = (size_t)pq->M * CC_PQ_KSUB;
    pq->books_t = cc_malloc_aligned(table * (size_t)pq->dsub * sizeof(float), "PQ books");
    pq->code_norms = cc_malloc_aligned(table * sizeof(float), "PQ norms");
    if (!pq->books_t || !pq->code_norms) {
        cc_pq_release(pq);
        return -1;
    }
    for (int m = 0; m < pq->M; m++)
        for (int j = 0; j < CC_PQ_KSUB; j++) {
            const float *c = pq->books + ((size_t)m * CC_PQ_KSUB + j) * pq->dsub;
            float norm = 0;
            for (int t = 0; t < pq->dsub; t++) {
                pq->books_t[((size_t)m * pq->dsub + t) * CC_PQ_KSUB + j] = c[t];
                norm += c[t] * c[t];
            }
            pq->code_norms[(size_t)m * CC_PQ_KSUB + j] = norm;
        }
    return 0;
}

void cc_pq_release(cc_pq *pq) {
    cc_free_aligned(pq->books_t);
    cc_free_aligned(pq->code_norms);
    pq->books_t = pq->code_norms = NULL;
}

int cc_pq_train(int d, int M, const float *x, int64_t n, uint64_t seed, float *books_out, int show_progress) {
    if (n < CC_PQ_KSUB) {
        cc_set_error("PQ training needs at least %d vectors, got %lld", CC_PQ_KSUB, (long long)n);
        return -1;
    }
    int dsub = d / M;
    int64_t n_train = n < PQ_TRAIN_MAX_POINTS ? n : PQ_TRAIN_MAX_POINTS;
    /* the same evenly spread sample of rows for every sub-space */
    float *sub = cc_malloc_aligned((size_t)n_train * (size_t)dsub * sizeof(float), "PQ training sample");
    if (!sub) return -1;
    cc_kmeans_params kp;
    cc_kmeans_default_params(&kp);
    kp.niter = PQ_KMEANS_ITERATIONS;
    kp.max_points_per_centroid = 0;
    kp.init = CC_KMEANS_INIT_PLUSPLUS; /* better codebooks than faiss's random init: +0.002 recall@10 */
    int rc = 0;
    cc_progress progress;
    if (show_progress) cc_progress_start(&progress, "PQ training", M, "sub-quantisers");
    for (int m = 0; m < M && rc == 0; m++) {
        for (int64_t i = 0; i < n_train; i++) {
            int64_t row = n_train == n ? i : i * n / n_train;
            memcpy(sub + i * dsub, x + row * d + (int64_t)m * dsub, (size_t)dsub * sizeof(float));
        }
        kp.seed = seed + 7919u * (uint64_t)m;
        rc = cc_kmeans(sub, n_train, dsub, CC_PQ_KSUB, &kp, books_out + (size_t)m * CC_PQ_KSUB * dsub, NULL);
        if (show_progress) cc_progress_update(&progress, m + 1);
    }
    if (show_progress) cc_progress_finish(&progress);
    cc_free_aligned(sub);
    return rc;
}

/* ------------------------------------------------------------------ tables */

__attribute__((target("avx512f"))) static void ip_table_avx512(const cc_pq *pq, const float *q, float *table) {
    for (int m = 0; m < pq->M; m++) {
        __m512 acc[16];
        for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
        const float *bt = pq->books_t + (size_t)m * pq->dsub * CC_PQ_KSUB;
        for (int t = 0; t < pq->dsub; t++) {
            __m512 b = _mm512_set1_ps(q[m * pq->dsub + t]);
            for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(b, _mm512_loadu_ps(bt + t * CC_PQ_KSUB + 16 * i), acc[i]);
        }
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(table + (size_t)m * CC_PQ_KSUB + 16 * i, acc[i]);
    }
}

__attribute__((target("avx2,fma"))) static void ip_table_avx2(const cc_pq *pq, const float *q, float *table) {
    for (int m = 0; m < pq->M; m++) {
        const float *bt = pq->books_t + (size_t)m * pq->dsub * CC_PQ_KSUB;
        for (int half = 0; half < 2; half++) {
            __m256 acc[16];
            for (int i = 0; i < 16; i++) acc[i] = _mm256_setzero_ps();
            for (int t = 0; t < pq->dsub; t++) {
                __m256 b = _mm256_set1_ps(q[m * pq->dsub + t]);
                const float *row = bt + t * CC_PQ_KSUB + 128 * half;
                for (int i = 0; i < 16; i++) acc[i] = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 8 * i), acc[i]);
            }
            for (int i = 0; i < 16; i++) _mm256_storeu_ps(table + (size_t)m * CC_PQ_KSUB + 128 * half + 8 * i, acc[i]);
        }
    }
}

static void ip_table_scalar(const cc_pq *pq, const float *q, float *table) {
    for (int m = 0; m < pq->M; m++) {
        float *out = table + (size_t)m * CC_PQ_KSUB;
        for (int j = 0; j < CC_PQ_KSUB; j++) out[j] = 0;
        const float *bt = pq->books_t + (size_t)m * pq->dsub * CC_PQ_KSUB;
        for (int t = 0; t < pq->dsub; t++) {
            float b = q[m * pq->dsub + t];
            for (int j = 0; j < CC_PQ_KSUB; j++) out[j] += b * bt[t * CC_PQ_KSUB + j];
        }
    }
}

/* Four queries: per sub-quantiser and 64-entry chunk, 4 x 4 accumulators; a codebook load serves
 * all four queries (the codebooks, d x 256 floats, do not fit L1, so their reads set the pace). */
__attribute__((target("avx512f"))) static void ip_tables4_avx512(const cc_pq *pq, const float *const *q,
                                                                 float *const *tables) {
    int dsub = pq->dsub;
    for (int m = 0; m < pq->M; m++) {
        const float *bt = pq->books_t + (size_t)m * dsub * CC_PQ_KSUB;
        for (int c = 0; c < CC_PQ_KSUB; c += 64) {
            __m512 acc[4][4];
            for (int a = 0; a < 4; a++)
                for (int i = 0; i < 4; i++) acc[a][i] = _mm512_setzero_ps();
            for (int t = 0; t < dsub; t++) {
                const float *row = bt + t * CC_PQ_KSUB + c;
                __m512 b0 = _mm512_loadu_ps(row), b1 = _mm512_loadu_ps(row + 16), b2 = _mm512_loadu_ps(row + 32),
                       b3 = _mm512_loadu_ps(row + 48);
                for (int a = 0; a < 4; a++) {
                    __m512 x = _mm512_set1_ps(q[a][m * dsub + t]);
                    acc[a][0] = _mm512_fmadd_ps(x, b0, acc[a][0]);
                    acc[a][1] = _mm512_fmadd_ps(x, b1, acc[a][1]);
                    acc[a][2] = _mm512_fmadd_ps(x, b2, acc[a][2]);
                    acc[a][3] = _mm512_fmadd_ps(x, b3, acc[a][3]);
                }
            }
            for (int a = 0; a < 4; a++)
                for (int i = 0; i < 4; i++) _mm512_storeu_ps(tables[a] + (size_t)m * CC_PQ_KSUB + c + 16 * i, acc[a][i]);
        }
    }
}

void cc_pq_ip_tables(const cc_pq *pq, int nq, const float *const *q, float *const *tables) {
    if (nq == 4 && cc_cpu_isa() == CC_ISA_AVX512) {
        ip_tables4_avx512(pq, q, tables);
        return;
    }
    for (int a = 0; a < nq; a++) cc_pq_ip_table(pq, q[a], tables[a]);
}

void cc_pq_ip_table(const cc_pq *pq, const float *q, float *table) {
    switch (cc_cpu_isa()) {
    case CC_ISA_AVX512: ip_table_avx512(pq, q, table); break;
    case CC_ISA_AVX2: ip_table_avx2(pq, q, table); break;
    default: ip_table_scalar(pq, q, table); break;
    }
}

void cc_pq_encode(const cc_pq *pq, const float *x, int64_t n, uint8_t *codes) {
#pragma omp parallel
    {
        float *table = cc_malloc_aligned((size_t)pq->M * CC_PQ_KSUB * sizeof(float), "PQ encode table");
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            const float *row = x + i * pq->d;
            uint8_t *code = codes + i * pq->M;
            if (!table) { /* out of memory: plain loops */
                for (int m = 0; m < pq->M; m++) {
                    float best = INFINITY;
                    int best_j = 0;
                    for (int j = 0; j < CC_PQ_KSUB; j++) {
                        const float *c = pq->books + ((size_t)m * CC_PQ_KSUB + j) * pq->dsub;
                        float dist = 0;
                        for (int t = 0; t < pq->dsub; t++) {
                            float diff = row[m * pq->dsub + t] - c[t];
                            dist += diff * diff;
                        }
                        if (dist < best) best = dist, best_j = j;
                    }
                    code[m] = (uint8_t)best_j;
                }
                continue;
            }
            cc_pq_ip_table(pq, row, table);
            for (int m = 0; m < pq->M; m++) {
                /* ||x_m - c||² = ||x_m||² - 2 x_m·c + ||c||²; the first term is the same for every c */
                const float *t = table + (size_t)m * CC_PQ_KSUB, *cn = pq->code_norms + (size_t)m * CC_PQ_KSUB;
                float best = INFINITY;
                int best_j = 0;
                for (int j = 0; j < CC_PQ_KSUB; j++) {
                    float dist = cn[j] - 2.0f * t[j];
                    if (dist < best) best = dist, best_j = j;
                }
                code[m] = (uint8_t)best_j;
            }
        }
        cc_free_aligned(table);
    }
}

void cc_pq_decode(const cc_pq *pq, const uint8_t *code, size_t stride, float *out) {
    for (int m = 0; m < pq->M; m++)
        memcpy(out + m * pq->dsub, pq->books + ((size_t)m * CC_PQ_KSUB + code[m * stride]) * pq->dsub,
               (size_t)pq->dsub * sizeof(float));
}

float cc_pq_code_sim(const uint8_t *code, size_t stride, int M, const float *table) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        s0 += table[(size_t)m * CC_PQ_KSUB + code[(size_t)m * stride]];
        s1 += table[(size_t)(m + 1) * CC_PQ_KSUB + code[(size_t)(m + 1) * stride]];
        s2 += table[(size_t)(m + 2) * CC_PQ_KSUB + code[(size_t)(m + 2) * stride]];
        s3 += table[(size_t)(m + 3) * CC_PQ_KSUB + code[(size_t)(m + 3) * stride]];
    }
    for (; m < M; m++) s0 += table[(size_t)m * CC_PQ_KSUB + code[(size_t)m * stride]];
    return (s0 + s1) + (s2 + s3);
}

/* ------------------------------------------------------------------ 8-bit fast scan */

static void quantize_table_scalar(const float *table, int M, uint8_t *qtable, float *offset, float *scale) {
    float max_range = 0;
    double sum_min = 0;
    for (int m = 0; m < M; m++) {
        const float *t = table + (size_t)m * CC_PQ_KSUB;
        float lo = t[0], hi = t[0];
        for (int j = 1; j < CC_PQ_KSUB; j++) {
            lo = t[j] < lo ? t[j] : lo;
            hi = t[j] > hi ? t[j] : hi;
        }
        if (hi - lo > max_range) max_range = hi - lo;
        sum_min += lo;
    }
    float s = max_range > 0 ? max_range / 255.0f : 1.0f;
    float inv = 1.0f / s;
    for (int m = 0; m < M; m++) {
        const float *t = table + (size_t)m * CC_PQ_KSUB;
        float lo = t[0];
        for (int j = 1; j < CC_PQ_KSUB; j++) lo = t[j] < lo ? t[j] : lo;
        uint8_t *qt = qtable + (size_t)m * CC_PQ_KSUB;
        for (int j = 0; j < CC_PQ_KSUB; j++) {
            float v = (t[j] - lo) * inv + 0.5f;
            qt[j] = (uint8_t)(v >= 255.0f ? 255 : (int)v);
        }
    }
    *offset = (float)sum_min;
    *scale = s;
}

#define PQ_MAX_M 256
__attribute__((target("avx512f,avx512bw"))) static void quantize_table_avx512(const float *table, int M, uint8_t *qtable,
                                                                              float *offset, float *scale) {
    float lows[PQ_MAX_M];
    float max_range = 0;
    double sum_min = 0;
    for (int m = 0; m < M; m++) {
        const float *t = table + (size_t)m * CC_PQ_KSUB;
        __m512 lo = _mm512_loadu_ps(t), hi = lo;
        for (int j = 16; j < CC_PQ_KSUB; j += 16) {
            __m512 v = _mm512_loadu_ps(t + j);
            lo = _mm512_min_ps(lo, v);
            hi = _mm512_max_ps(hi, v);
        }
        lows[m] = _mm512_reduce_min_ps(lo);
        float range = _mm512_reduce_max_ps(hi) - lows[m];
        if (range > max_range) max_range = range;
        sum_min += lows[m];
    }
    float s = max_range > 0 ? max_range / 255.0f : 1.0f;
    __m512 inv = _mm512_set1_ps(1.0f / s), half = _mm512_set1_ps(0.5f);
    for (int m = 0; m < M; m++) {
        const float *t = table + (size_t)m * CC_PQ_KSUB;
        __m512 lo = _mm512_set1_ps(lows[m]);
        uint8_t *qt = qtable + (size_t)m * CC_PQ_KSUB;
        for (int j = 0; j < CC_PQ_KSUB; j += 16) {
            __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(t + j), lo), inv, half);
            /* truncation of a value >= 0 is floor; values above 255 saturate */
            _mm_storeu_si128((__m128i *)(qt + j), _mm512_cvtusepi32_epi8(_mm512_cvttps_epu32(v)));
        }
    }
    *offset = (float)sum_min;
    *scale = s;
}

void cc_pq_quantize_table(const float *table, int M, uint8_t *qtable, float *offset, float *scale) {
    if (cc_cpu_isa() == CC_ISA_AVX512 && M <= PQ_MAX_M) quantize_table_avx512(table, M, qtable, offset, scale);
    else quantize_table_scalar(table, M, qtable, offset, scale);
}

/* 64 codes per call; the u16 sums of even codes accumulate in one register (low bytes of the
 * words) and those of odd codes in another (high bytes shifted down). */
__attribute__((target("avx512f,avx512bw,avx512vbmi,bmi2"))) static uint64_t
scan_block_vbmi(const uint8_t *block, size_t stride, int M, int count, const uint8_t *qtable, uint16_t threshold) {
    __mmask64 lanes = count >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << count) - 1);
    __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    const __m512i low_bytes = _mm512_set1_epi16(0x00ff);
    for (int m = 0; m < M; m++) {
        __m512i c = _mm512_maskz_loadu_epi8(lanes, block + (size_t)m * stride);
        const uint8_t *t = qtable + (size_t)m * CC_PQ_KSUB;
        __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), c, _mm512_loadu_si512(t + 64));
        __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), c, _mm512_loadu_si512(t + 192));
        __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(c), lo, hi);
        even = _mm512_add_epi16(even, _mm512_and_si512(v, low_bytes));
        odd = _mm512_add_epi16(odd, _mm512_srli_epi16(v, 8));
    }
    __m512i thr = _mm512_set1_epi16((short)threshold);
    uint64_t me = (uint32_t)_mm512_cmpgt_epu16_mask(even, thr);
    uint64_t mo = (uint32_t)_mm512_cmpgt_epu16_mask(odd, thr);
    uint64_t mask = _pdep_u64(me, 0x5555555555555555ull) | _pdep_u64(mo, 0xaaaaaaaaaaaaaaaaull);
    return mask & lanes;
}

uint64_t cc_pq_scan_block_mask(const uint8_t *block, size_t stride, int M, int count, const uint8_t *qtable,
                               uint16_t threshold) {
    return scan_block_vbmi(block, stride, M, count, qtable, threshold);
}

void cc_pq_block_sums(const uint8_t *block, size_t stride, int M, int count, const uint8_t *qtable, uint16_t *sums) {
    /* portable reference of the 16-bit sums (tests compare the VBMI mask against it) */
    for (int i = 0; i < count; i++) {
        unsigned s = 0;
        for (int m = 0; m < M; m++) s += qtable[(size_t)m * CC_PQ_KSUB + block[(size_t)m * stride + i]];
        sums[i] = (uint16_t)s;
    }
}
