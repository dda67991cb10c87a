/* sq.c — scalar-quantised codes (SQ8, F16, BF16; see sq.h): training, encoding, decoding and the
 * query-against-codes distance kernels, portable C first (the definition), then AVX2 + F16C + FMA.
 */
#include "index/sq.h"

#include "engine/tensor.h" /* cc_f32_to_f16, cc_f16_to_f32, cc_f32_to_bf16, cc_bf16_to_f32 */

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define SQ_HAVE_X86 1
#endif

#define SQ8_LEVELS 255.0f /* codes 0..255 */

const char *cc_sq_name(cc_sq_kind kind) {
    switch (kind) {
    case CC_SQ_8: return "SQ8";
    case CC_SQ_F16: return "F16";
    case CC_SQ_BF16: return "BF16";
    default: return "Flat";
    }
}

size_t cc_sq_code_bytes(cc_sq_kind kind, int d) {
    switch (kind) {
    case CC_SQ_8: return (size_t)d;
    case CC_SQ_F16:
    case CC_SQ_BF16: return (size_t)d * 2;
    default: return (size_t)d * 4;
    }
}

/* ------------------------------------------------------------------ training, coding */

void cc_sq8_train(const float *x, int64_t n, int d, float *vmin, float *scale) {
    for (int j = 0; j < d; j++) vmin[j] = INFINITY, scale[j] = -INFINITY; /* scale holds max first */
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            float v = x[i * d + j];
            if (v < vmin[j]) vmin[j] = v;
            if (v > scale[j]) scale[j] = v;
        }
    for (int j = 0; j < d; j++) {
        if (n == 0) vmin[j] = 0, scale[j] = 0;
        scale[j] = (scale[j] - vmin[j]) / SQ8_LEVELS;
    }
}

static uint8_t sq8_code(float v, float vmin, float scale) {
    if (!(scale > 0)) return 0;
    float c = nearbyintf((v - vmin) / scale);
    return (uint8_t)(c < 0 ? 0 : c > SQ8_LEVELS ? SQ8_LEVELS : c);
}

void cc_sq_encode(const cc_sq *sq, const float *x, int64_t n, uint8_t *codes) {
    int d = sq->d;
    size_t cb = cc_sq_code_bytes(sq->kind, d);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * d;
        uint8_t *c = codes + (size_t)i * cb;
        for (int j = 0; j < d; j++) {
            if (sq->kind == CC_SQ_8) {
                c[j] = sq8_code(row[j], sq->vmin[j], sq->scale[j]);
            } else {
                uint16_t h = sq->kind == CC_SQ_F16 ? cc_f32_to_f16(row[j]) : cc_f32_to_bf16(row[j]);
                memcpy(c + 2 * j, &h, 2);
            }
        }
    }
}

static float decode_one(const cc_sq *sq, const uint8_t *code, int j) {
    if (sq->kind == CC_SQ_8) return sq->vmin[j] + sq->scale[j] * (float)code[j];
    uint16_t h;
    memcpy(&h, code + 2 * j, 2);
    return sq->kind == CC_SQ_F16 ? cc_f16_to_f32(h) : cc_bf16_to_f32(h);
}

void cc_sq_decode(const cc_sq *sq, const uint8_t *code, float *out) {
    for (int j = 0; j < sq->d; j++) out[j] = decode_one(sq, code, j);
}

/* ------------------------------------------------------------------ query preparation */

void cc_sq_query_prepare(cc_sq_query *qs, const cc_sq *sq, const float *q, int ip, float *a) {
    qs->sq = sq;
    qs->ip = ip;
    qs->a = a;
    qs->offset = 0;
    int d = sq->d;
    if (sq->kind != CC_SQ_8) {
        memcpy(a, q, (size_t)d * sizeof(float));
        return;
    }
    /* IP: q·x = Σ q_j vmin_j + Σ (q_j scale_j) c_j;  L2: (q_j - x_j) = (q_j - vmin_j) - scale_j c_j */
    for (int j = 0; j < d; j++) {
        if (ip) {
            a[j] = q[j] * sq->scale[j];
            qs->offset += q[j] * sq->vmin[j];
        } else {
            a[j] = q[j] - sq->vmin[j];
        }
    }
}

/* ------------------------------------------------------------------ portable kernels (definition) */

static float row_scalar(const cc_sq_query *qs, const uint8_t *code) {
    const cc_sq *sq = qs->sq;
    int d = sq->d;
    float acc = 0;
    if (sq->kind == CC_SQ_8) {
        if (qs->ip) {
            for (int j = 0; j < d; j++) acc += qs->a[j] * (float)code[j];
            return acc + qs->offset;
        }
        for (int j = 0; j < d; j++) {
            float diff = qs->a[j] - sq->scale[j] * (float)code[j];
            acc += diff * diff;
        }
        return acc;
    }
    for (int j = 0; j < d; j++) {
        float x = decode_one(sq, code, j);
        if (qs->ip) acc += qs->a[j] * x;
        else acc += (qs->a[j] - x) * (qs->a[j] - x);
    }
    return acc;
}

static void rows_scalar(const cc_sq_query *qs, const uint8_t *codes, size_t n, float *out) {
    size_t cb = cc_sq_code_bytes(qs->sq->kind, qs->sq->d);
    for (size_t i = 0; i < n; i++) out[i] = row_scalar(qs, codes + i * cb);
}

/* ------------------------------------------------------------------ AVX2 + F16C + FMA
 * Same sums, eight dimensions per step (codes widened to float lanes), one accumulator per row;
 * the tail of dimensions that is not a multiple of 8 goes through the scalar terms. */

#ifdef SQ_HAVE_X86
#define SQ_AVX2 __attribute__((target("avx2,fma,f16c")))

SQ_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SQ_AVX2 static inline __m256 load8_codes(const cc_sq *sq, const uint8_t *code, int j) {
    if (sq->kind == CC_SQ_8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(code + j));
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
    }
    __m128i h = _mm_loadu_si128((const __m128i *)(code + 2 * j));
    if (sq->kind == CC_SQ_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* BF16 */
}

SQ_AVX2 static float row_avx2(const cc_sq_query *qs, const uint8_t *code) {
    const cc_sq *sq = qs->sq;
    int d = sq->d, j = 0;
    __m256 acc = _mm256_setzero_ps();
    int sq8 = sq->kind == CC_SQ_8;
    for (; j + 8 <= d; j += 8) {
        __m256 c = load8_codes(sq, code, j), a = _mm256_loadu_ps(qs->a + j);
        if (qs->ip) {
            acc = _mm256_fmadd_ps(a, c, acc);
        } else {
            __m256 x = sq8 ? _mm256_mul_ps(_mm256_loadu_ps(sq->scale + j), c) : c;
            __m256 diff = _mm256_sub_ps(a, x);
            acc = _mm256_fmadd_ps(diff, diff, acc);
        }
    }
    float sum = hsum256(acc);
    for (; j < d; j++) {
        float x = sq8 ? (float)code[j] : decode_one(sq, code, j);
        if (qs->ip) sum += qs->a[j] * x;
        else {
            float diff = qs->a[j] - (sq8 ? sq->scale[j] * x : x);
            sum += diff * diff;
        }
    }
    return sq8 && qs->ip ? sum + qs->offset : sum;
}

SQ_AVX2 static void rows_avx2(const cc_sq_query *qs, const uint8_t *codes, size_t n, float *out) {
    size_t cb = cc_sq_code_bytes(qs->sq->kind, qs->sq->d);
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n) __builtin_prefetch(codes + (i + 2) * cb);
        out[i] = row_avx2(qs, codes + i * cb);
    }
}
#endif

#ifdef SQ_HAVE_X86
/* F16C (CPUID leaf 1, ECX bit 29): every AVX2 CPU has it, but the check is cheap and exact.
 * (clang's __builtin_cpu_supports does not know "f16c".) */
static int cpu_has_f16c(void) {
    static int known = -1;
    if (known < 0) {
        unsigned a, b, c, d;
        known = __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1);
    }
    return known;
}
#endif

void cc_sq_rows(const cc_sq_query *qs, const uint8_t *codes, size_t n, float *out, cc_isa isa) {
#ifdef SQ_HAVE_X86
    if (isa >= CC_ISA_AVX2 && cc_cpu_isa() >= CC_ISA_AVX2 && cpu_has_f16c()) {
        rows_avx2(qs, codes, n, out);
        return;
    }
#endif
    rows_scalar(qs, codes, n, out);
}
