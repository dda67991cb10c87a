/* cpu_ops_avx512.c — the CPU kernels compiled for AVX-512 (F, DQ, BW, VL): the 16-lane vector
 * layer that kernels/cpu_ops_simd.inc is written over, then that file. Only called after
 * cpu_ops.c has checked the CPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_ops_ref.h"
#include "kernels/simd_math.h"

#ifdef CC_HAVE_X86_SIMD
#pragma GCC push_options
CC_PRAGMA_TARGET(CC_TARGET_AVX512)

typedef __m512 vf;
#define VL 16
#define KN(name) name##_avx512
#define SIMD_NAME "avx512"
#define ATT_MR 6 /* attention micro-tile: 6 rows × 4 vectors = 24 of the 32 zmm registers */
#define ATT_NV 4

static inline __mmask16 lanes(int64_t n) { return (__mmask16)((1u << n) - 1u); } /* n < 16 */

static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf v_load_n(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
static inline vf v_load_n_or(const float *p, int64_t n, vf fill) { return _mm512_mask_loadu_ps(fill, lanes(n), p); }
static inline void v_store_n(float *p, vf v, int64_t n) { _mm512_mask_storeu_ps(p, lanes(n), v); }
static inline vf v_keep_n(vf v, int64_t n) { return _mm512_maskz_mov_ps(lanes(n), v); }
static inline vf v_keep_n_or(vf v, int64_t n, vf fill) { return _mm512_mask_mov_ps(fill, lanes(n), v); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline float v_hsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float v_hmax(vf v) { return _mm512_reduce_max_ps(v); }
static inline vf v_exp(vf x) { return cc_exp_avx512(x); }
static inline vf v_erf(vf x) { return cc_erf_avx512(x); }
static inline vf v_tanh(vf x) { return cc_tanh_avx512(x); }

static inline void v_acc_double(double *d, vf v) {
    _mm512_storeu_pd(d, _mm512_add_pd(_mm512_loadu_pd(d), _mm512_cvtps_pd(_mm512_castps512_ps256(v))));
    _mm512_storeu_pd(d + 8, _mm512_add_pd(_mm512_loadu_pd(d + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
}

static inline void v_acc_double_n(double *d, vf v, int64_t n) {
    float tmp[VL];
    _mm512_storeu_ps(tmp, v);
    for (int64_t i = 0; i < n; i++) d[i] += tmp[i];
}

/* dst[c·ds + r] = src[r·ss + c] for a 16×16 block: pairs of rows interleaved by 32, then 64 bits,
 * then the 4×4 grid of 128-bit quads transposed in two rounds of shuffle_f32x4. */
static inline void v_transpose_block(const float *src, int64_t ss, float *dst, int64_t ds) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ss);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i + k], quad q = column 4q + k of rows 4i..4i+3 */
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int k = 0; k < 4; k++) { /* output row 4q + k = quad q of r[k], r[4+k], r[8+k], r[12+k] */
        __m512 b0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44), b1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
        __m512 b2 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44), b3 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
        _mm512_storeu_ps(dst + (0 + k) * ds, _mm512_shuffle_f32x4(b0, b2, 0x88));
        _mm512_storeu_ps(dst + (4 + k) * ds, _mm512_shuffle_f32x4(b0, b2, 0xDD));
        _mm512_storeu_ps(dst + (8 + k) * ds, _mm512_shuffle_f32x4(b1, b3, 0x88));
        _mm512_storeu_ps(dst + (12 + k) * ds, _mm512_shuffle_f32x4(b1, b3, 0xDD));
    }
}

#include "kernels/cpu_ops_simd.inc"

#pragma GCC pop_options
#endif
