/* cpu_ops_avx2.c — the CPU kernels compiled for AVX2 + FMA: the 8-lane vector layer that
 * kernels/cpu_ops_simd.inc is written over, then that file. Only called after cpu_ops.c has
 * checked the CPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_ops_ref.h"
#include "kernels/simd_math.h"

#ifdef CC_HAVE_X86_SIMD
#pragma GCC push_options
CC_PRAGMA_TARGET(CC_TARGET_AVX2)

typedef __m256 vf;
#define VL 8
#define KN(name) name##_avx2
#define SIMD_NAME "avx2"
#define ATT_MR 6 /* attention micro-tile: 6 rows × 2 vectors = 12 of the 16 ymm registers */
#define ATT_NV 2

/* lane masks: 8 − n entries into this table give n leading -1s */
static const int32_t lane_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i lanes(int64_t n) { return _mm256_loadu_si256((const __m256i *)(lane_mask_table + 8 - n)); }

static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_set1(float x) { return _mm256_set1_ps(x); }
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf v_load_n(const float *p, int64_t n) { return _mm256_maskload_ps(p, lanes(n)); }
static inline vf v_load_n_or(const float *p, int64_t n, vf fill) {
    __m256i m = lanes(n);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void v_store_n(float *p, vf v, int64_t n) { _mm256_maskstore_ps(p, lanes(n), v); }
static inline vf v_keep_n(vf v, int64_t n) { return _mm256_and_ps(v, _mm256_castsi256_ps(lanes(n))); }
static inline vf v_keep_n_or(vf v, int64_t n, vf fill) { return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(lanes(n))); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline float v_hsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float v_hmax(vf v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline vf v_exp(vf x) { return cc_exp_avx2(x); }
static inline vf v_erf(vf x) { return cc_erf_avx2(x); }
static inline vf v_tanh(vf x) { return cc_tanh_avx2(x); }

static inline void v_acc_double(double *d, vf v) {
    _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(d + 4, _mm256_add_pd(_mm256_loadu_pd(d + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

static inline void v_acc_double_n(double *d, vf v, int64_t n) {
    float tmp[VL];
    _mm256_storeu_ps(tmp, v);
    for (int64_t i = 0; i < n; i++) d[i] += tmp[i];
}

/* dst[c·ds + r] = src[r·ss + c] for an 8×8 block: rows interleaved by 32, then 64 bits, then the
 * 128-bit halves exchanged. */
static inline void v_transpose_block(const float *src, int64_t ss, float *dst, int64_t ds) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ss);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) { /* r[4i + k], half q = column 4q + k of rows 4i..4i+3 */
        __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
        __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(dst + k * ds, _mm256_permute2f128_ps(r[k], r[4 + k], 0x20));
        _mm256_storeu_ps(dst + (4 + k) * ds, _mm256_permute2f128_ps(r[k], r[4 + k], 0x31));
    }
}

#include "kernels/cpu_ops_simd.inc"

#pragma GCC pop_options
#endif
