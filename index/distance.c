/* distance.c — inner-product and squared-L2 kernels (AVX-512, AVX2+FMA, portable C) and the runtime
 * choice between them. See distance.h. */
#include "index/distance.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- portable C */

static float ip_scalar(const float *a, const float *b, size_t d) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < d; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float l2sq_scalar(const float *a, const float *b, size_t d) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        float t0 = a[i] - b[i], t1 = a[i + 1] - b[i + 1], t2 = a[i + 2] - b[i + 2], t3 = a[i + 3] - b[i + 3];
        s0 += t0 * t0;
        s1 += t1 * t1;
        s2 += t2 * t2;
        s3 += t3 * t3;
    }
    for (; i < d; i++) {
        float t = a[i] - b[i];
        s0 += t * t;
    }
    return (s0 + s1) + (s2 + s3);
}

static void ip4_scalar(const float *q, const float *x0, const float *x1, const float *x2, const float *x3,
                       size_t d, float out[4]) {
    out[0] = ip_scalar(q, x0, d);
    out[1] = ip_scalar(q, x1, d);
    out[2] = ip_scalar(q, x2, d);
    out[3] = ip_scalar(q, x3, d);
}

static void l2sq4_scalar(const float *q, const float *x0, const float *x1, const float *x2, const float *x3,
                         size_t d, float out[4]) {
    out[0] = l2sq_scalar(q, x0, d);
    out[1] = l2sq_scalar(q, x1, d);
    out[2] = l2sq_scalar(q, x2, d);
    out[3] = l2sq_scalar(q, x3, d);
}

static void ip_rows_scalar(const float *q, const float *x, size_t n, size_t d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = ip_scalar(q, x + i * d, d);
}

static void l2sq_rows_scalar(const float *q, const float *x, size_t n, size_t d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = l2sq_scalar(q, x + i * d, d);
}

/* ---------------------------------------------------------------- AVX2 + FMA */

#define AVX2_TARGET __attribute__((target("avx2,fma")))

AVX2_TARGET static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

AVX2_TARGET static float ip_avx2(const float *a, const float *b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= d; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float sum = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < d; i++) sum += a[i] * b[i];
    return sum;
}

AVX2_TARGET static float l2sq_avx2(const float *a, const float *b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float sum = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < d; i++) {
        float t = a[i] - b[i];
        sum += t * t;
    }
    return sum;
}

AVX2_TARGET static void ip4_avx2(const float *q, const float *x0, const float *x1, const float *x2,
                                 const float *x3, size_t d, float out[4]) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 qv = _mm256_loadu_ps(q + i);
        s0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(x0 + i), s0);
        s1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(x1 + i), s1);
        s2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(x2 + i), s2);
        s3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(x3 + i), s3);
    }
    out[0] = hsum256(s0);
    out[1] = hsum256(s1);
    out[2] = hsum256(s2);
    out[3] = hsum256(s3);
    for (; i < d; i++) {
        out[0] += q[i] * x0[i];
        out[1] += q[i] * x1[i];
        out[2] += q[i] * x2[i];
        out[3] += q[i] * x3[i];
    }
}

AVX2_TARGET static void l2sq4_avx2(const float *q, const float *x0, const float *x1, const float *x2,
                                   const float *x3, size_t d, float out[4]) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 qv = _mm256_loadu_ps(q + i);
        __m256 t0 = _mm256_sub_ps(qv, _mm256_loadu_ps(x0 + i));
        __m256 t1 = _mm256_sub_ps(qv, _mm256_loadu_ps(x1 + i));
        __m256 t2 = _mm256_sub_ps(qv, _mm256_loadu_ps(x2 + i));
        __m256 t3 = _mm256_sub_ps(qv, _mm256_loadu_ps(x3 + i));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    out[0] = hsum256(s0);
    out[1] = hsum256(s1);
    out[2] = hsum256(s2);
    out[3] = hsum256(s3);
    for (; i < d; i++) {
        float t0 = q[i] - x0[i], t1 = q[i] - x1[i], t2 = q[i] - x2[i], t3 = q[i] - x3[i];
        out[0] += t0 * t0;
        out[1] += t1 * t1;
        out[2] += t2 * t2;
        out[3] += t3 * t3;
    }
}

AVX2_TARGET static void ip_rows_avx2(const float *q, const float *x, size_t n, size_t d, float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) ip4_avx2(q, x + i * d, x + (i + 1) * d, x + (i + 2) * d, x + (i + 3) * d, d, out + i);
    for (; i < n; i++) out[i] = ip_avx2(q, x + i * d, d);
}

AVX2_TARGET static void l2sq_rows_avx2(const float *q, const float *x, size_t n, size_t d, float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) l2sq4_avx2(q, x + i * d, x + (i + 1) * d, x + (i + 2) * d, x + (i + 3) * d, d, out + i);
    for (; i < n; i++) out[i] = l2sq_avx2(q, x + i * d, d);
}

/* ---------------------------------------------------------------- AVX-512 */

#define AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

AVX512_TARGET static inline __mmask16 tail_mask(size_t left) {
    return (__mmask16)((1u << left) - 1u);
}

AVX512_TARGET static float ip_avx512(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= d; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < d) {
        __mmask16 m = tail_mask(d - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512_TARGET static float l2sq_avx512(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        s1 = _mm512_fmadd_ps(t1, t1, s1);
        s2 = _mm512_fmadd_ps(t2, t2, s2);
        s3 = _mm512_fmadd_ps(t3, t3, s3);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    if (i < d) {
        __mmask16 m = tail_mask(d - i);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(t, t, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Four rows at once: the query is loaded once per 16 lanes and the four rows stream in parallel,
 * which keeps more cache misses in flight in graph search, where rows are scattered. Two
 * accumulators per row keep eight FMA chains independent. */
AVX512_TARGET static void ip4_avx512(const float *q, const float *x0, const float *x1, const float *x2,
                                     const float *x3, size_t d, float out[4]) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 qa = _mm512_loadu_ps(q + i), qb = _mm512_loadu_ps(q + i + 16);
        a0 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(x0 + i), a0);
        a1 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(x1 + i), a1);
        a2 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(x2 + i), a2);
        a3 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(x3 + i), a3);
        b0 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(x0 + i + 16), b0);
        b1 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(x1 + i + 16), b1);
        b2 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(x2 + i + 16), b2);
        b3 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(x3 + i + 16), b3);
    }
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail_mask(d - i);
        __m512 qa = _mm512_maskz_loadu_ps(m, q + i);
        a0 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, x0 + i), a0);
        a1 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, x1 + i), a1);
        a2 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, x2 + i), a2);
        a3 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, x3 + i), a3);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
}

AVX512_TARGET static void l2sq4_avx512(const float *q, const float *x0, const float *x1, const float *x2,
                                       const float *x3, size_t d, float out[4]) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail_mask(d - i);
        __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
        __m512 t0 = _mm512_sub_ps(qv, _mm512_maskz_loadu_ps(m, x0 + i));
        __m512 t1 = _mm512_sub_ps(qv, _mm512_maskz_loadu_ps(m, x1 + i));
        __m512 t2 = _mm512_sub_ps(qv, _mm512_maskz_loadu_ps(m, x2 + i));
        __m512 t3 = _mm512_sub_ps(qv, _mm512_maskz_loadu_ps(m, x3 + i));
        a0 = _mm512_fmadd_ps(t0, t0, a0);
        a1 = _mm512_fmadd_ps(t1, t1, a1);
        a2 = _mm512_fmadd_ps(t2, t2, a2);
        a3 = _mm512_fmadd_ps(t3, t3, a3);
    }
    out[0] = _mm512_reduce_add_ps(a0);
    out[1] = _mm512_reduce_add_ps(a1);
    out[2] = _mm512_reduce_add_ps(a2);
    out[3] = _mm512_reduce_add_ps(a3);
}

/* Streaming scan of contiguous rows: four rows per step, prefetching a few rows ahead so that the
 * loads of the next rows overlap the arithmetic of these (the hardware prefetcher follows within a
 * row, the software prefetch starts the next ones early). */
#define ROWS_PREFETCH_AHEAD 8 /* rows ahead of the current one to touch */

AVX512_TARGET static void ip_rows_avx512(const float *q, const float *x, size_t n, size_t d, float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        if (i + ROWS_PREFETCH_AHEAD + 4 <= n)
            for (size_t r = 0; r < 4; r++) {
                const char *p = (const char *)(x + (i + ROWS_PREFETCH_AHEAD + r) * d);
                _mm_prefetch(p, _MM_HINT_T0);
            }
        ip4_avx512(q, x + i * d, x + (i + 1) * d, x + (i + 2) * d, x + (i + 3) * d, d, out + i);
    }
    for (; i < n; i++) out[i] = ip_avx512(q, x + i * d, d);
}

AVX512_TARGET static void l2sq_rows_avx512(const float *q, const float *x, size_t n, size_t d, float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        if (i + ROWS_PREFETCH_AHEAD + 4 <= n)
            for (size_t r = 0; r < 4; r++) {
                const char *p = (const char *)(x + (i + ROWS_PREFETCH_AHEAD + r) * d);
                _mm_prefetch(p, _MM_HINT_T0);
            }
        l2sq4_avx512(q, x + i * d, x + (i + 1) * d, x + (i + 2) * d, x + (i + 3) * d, d, out + i);
    }
    for (; i < n; i++) out[i] = l2sq_avx512(q, x + i * d, d);
}

/* ---------------------------------------------------------------- dispatch */

static const cc_dist_kernels kernels_scalar = {CC_ISA_SCALAR, "scalar", ip_scalar, l2sq_scalar, ip4_scalar,
                                               l2sq4_scalar, ip_rows_scalar, l2sq_rows_scalar};
static const cc_dist_kernels kernels_avx2 = {CC_ISA_AVX2, "avx2", ip_avx2, l2sq_avx2, ip4_avx2,
                                             l2sq4_avx2, ip_rows_avx2, l2sq_rows_avx2};
static const cc_dist_kernels kernels_avx512 = {CC_ISA_AVX512, "avx512", ip_avx512, l2sq_avx512, ip4_avx512,
                                               l2sq4_avx512, ip_rows_avx512, l2sq_rows_avx512};

static cc_isa detected_isa;
static int detected_vbmi;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    __builtin_cpu_init();
    cc_isa isa = CC_ISA_SCALAR;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = CC_ISA_AVX2;
    if (isa == CC_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        isa = CC_ISA_AVX512;
    const char *force = getenv("CLIPC_INDEX_ISA");
    if (force) {
        if (!strcmp(force, "scalar")) isa = CC_ISA_SCALAR;
        else if (!strcmp(force, "avx2") && isa > CC_ISA_AVX2) isa = CC_ISA_AVX2;
    }
    detected_isa = isa;
    detected_vbmi = isa == CC_ISA_AVX512 && __builtin_cpu_supports("avx512vbmi");
}

cc_isa cc_cpu_isa(void) {
    pthread_once(&detect_once, detect);
    return detected_isa;
}

int cc_cpu_has_vbmi(void) {
    pthread_once(&detect_once, detect);
    return detected_vbmi;
}

const cc_dist_kernels *cc_dist_for(cc_isa isa) {
    if (isa > cc_cpu_isa()) return NULL;
    switch (isa) {
    case CC_ISA_AVX512: return &kernels_avx512;
    case CC_ISA_AVX2: return &kernels_avx2;
    default: return &kernels_scalar;
    }
}

const cc_dist_kernels *cc_dist(void) { return cc_dist_for(cc_cpu_isa()); }

#include "engine/util.h"
#include "index/topk.h"

static void push_row_scalar(cc_topk *heap, const float *vals, int64_t n, int64_t id0) {
    float threshold = cc_topk_threshold(heap);
    for (int64_t j = 0; j < n; j++)
        if (vals[j] > threshold) {
            cc_topk_push(heap, vals[j], id0 + j);
            threshold = cc_topk_threshold(heap);
        }
}

AVX512_TARGET static void push_row_avx512(cc_topk *heap, const float *vals, int64_t n, int64_t id0) {
    float threshold = cc_topk_threshold(heap);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __mmask16 above = _mm512_cmp_ps_mask(_mm512_loadu_ps(vals + j), _mm512_set1_ps(threshold), _CMP_GT_OQ);
        while (above) {
            int b = __builtin_ctz(above);
            above &= (__mmask16)(above - 1);
            if (vals[j + b] > threshold) {
                cc_topk_push(heap, vals[j + b], id0 + j + b);
                threshold = cc_topk_threshold(heap);
            }
        }
    }
    push_row_scalar(heap, vals + j, n - j, id0 + j);
}

void cc_topk_push_row(cc_topk *heap, const float *vals, int64_t n, int64_t id0) {
    if (cc_cpu_isa() == CC_ISA_AVX512) push_row_avx512(heap, vals, n, id0);
    else push_row_scalar(heap, vals, n, id0);
}

extern void openblas_set_num_threads(int) __attribute__((weak));

void cc_gemm_per_thread_begin(void) {
    if (openblas_set_num_threads) openblas_set_num_threads(1);
}

void cc_gemm_per_thread_end(void) {
    if (openblas_set_num_threads) openblas_set_num_threads(cc_get_threads());
}

void cc_norms_sq(const float *x, size_t n, size_t d, float *out) {
    const cc_dist_kernels *k = cc_dist();
    for (size_t i = 0; i < n; i++) out[i] = k->ip(x + i * d, x + i * d, d);
}
