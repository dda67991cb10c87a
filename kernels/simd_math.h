/* simd_math.h — vectorised expf, erff and tanhf for AVX-512 (16 lanes) and AVX2+FMA (8 lanes).
 *
 * Each function is `static inline` with its own target attribute, so it can be inlined into any
 * function compiled for that ISA (the kernels in cpu_ops_avx512.c / cpu_ops_avx2.c); callers
 * must check the CPU first (cpu_ops.c does, with __builtin_cpu_supports). Accuracy against
 * glibc's libm over the whole float range is checked by tests/test_cpu_kernels.c (max error a
 * couple of ulp, NaN and ±inf handled, subnormal results of exp correctly rounded-ish).
 *
 * Algorithms (coefficients are near-minimax fits made with kernels/simd_math_fit.py):
 *   exp:  n = round(x·log2 e), r = x − n·ln2 (two-constant Cody–Waite with FMA, |r| ≤ ln2/2),
 *         eʳ ≈ 1 + r + r²·P4(r), result eʳ·2ⁿ (AVX-512 scalef; AVX2 two power-of-two factors so
 *         that overflow gives inf and tiny results round into the subnormals).
 *   tanh: odd, computed on a = |x| and given x's sign: a < 0.625: a + a³·P4(a²); else
 *         1 − 2/(e^{2a} + 1), a clamped at 10 (tanh is 1 in float from 9.01 on).
 *   erf:  odd, on a = |x|: a < 1: a + a·(P6(a²) − 1); 1 ≤ a < 4: 1 − e^{−a²}·R8(a − 2.5) where
 *         R8 fits erfc(a)·e^{a²}; a ≥ 4: 1 (erf rounds to 1 in float from 3.92 on).
 * min/max take x as the second operand so that NaN inputs propagate to NaN outputs.
 */
#ifndef CLIPC_SIMD_MATH_H
#define CLIPC_SIMD_MATH_H

#if defined(__x86_64__) && defined(__GNUC__)
#define CC_HAVE_X86_SIMD 1
#include <immintrin.h>

/* Feature sets of the two SIMD levels (the kernel files use the same strings in #pragma GCC target). */
#define CC_TARGET_AVX512 "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi,bmi2,f16c,popcnt"
#define CC_TARGET_AVX2 "avx2,fma,bmi,bmi2,f16c,popcnt"
/* `#pragma GCC target(...)` for a whole file section, from the strings above */
#define CC_DO_PRAGMA(x) _Pragma(#x)
#define CC_PRAGMA_TARGET(features) CC_DO_PRAGMA(GCC target(features))

/* ---- shared constants ---- */
#define CC_LOG2E 1.44269504088896341f
#define CC_LN2_HI 0.693145751953125f       /* ln 2 rounded to 16 bits: n·CC_LN2_HI is exact */
#define CC_LN2_LO 1.42860682030941723e-06f /* ln 2 − CC_LN2_HI */
#define CC_EXP_CLAMP_HI 100.0f             /* e^100 overflows: inf either way */
#define CC_EXP_CLAMP_LO (-110.0f)          /* e^-110 is below half the smallest subnormal: 0 */
/* eʳ − 1 − r ≈ r²·(E2 + E3 r + E4 r² + E5 r³ + E6 r⁴) on |r| ≤ ln2/2 (fit error 3e-9) */
#define CC_EXP_E2 0.4999999345f
#define CC_EXP_E3 0.1666652069f
#define CC_EXP_E4 0.04166838737f
#define CC_EXP_E5 0.008368709843f
#define CC_EXP_E6 0.001381461298f

#define CC_TANH_SMALL 0.625f
#define CC_TANH_CLAMP 10.0f
/* tanh(x) − x ≈ x³·(T1 + T2 u + T3 u² + T4 u³ + T5 u⁴), u = x², |x| < 0.625 (fit error 4e-9) */
#define CC_TANH_T1 (-0.3333328194f)
#define CC_TANH_T2 0.1333144219f
#define CC_TANH_T3 (-0.05373971485f)
#define CC_TANH_T4 0.02063908657f
#define CC_TANH_T5 (-0.005704986327f)

#define CC_ERF_SMALL 1.0f
#define CC_ERF_CLAMP 4.0f
#define CC_ERF_CENTER 2.5f
/* erf(x) ≈ x·(A0 + A1 u + ... + A6 u⁶), u = x², |x| < 1 (fit error 1.2e-9), A0 = 1.128379167 */
#define CC_ERF_A0M1 0.1283791671f /* A0 − 1: the result is x + x·(P − 1), one rounding at the end */
#define CC_ERF_A1 (-0.3761262582f)
#define CC_ERF_A2 0.1128358515f
#define CC_ERF_A3 (-0.02685381193f)
#define CC_ERF_A4 0.005188327670f
#define CC_ERF_A5 (-0.0008010193492f)
#define CC_ERF_A6 7.853860917e-05f
/* erfc(x)·e^{x²} ≈ B0 + B1 s + ... + B8 s⁸, s = x − 2.5, 1 ≤ x ≤ 4 (fit error 2.4e-9 absolute in erfc) */
#define CC_ERF_B0 0.2108076056f
#define CC_ERF_B1 (-0.07434218682f)
#define CC_ERF_B2 0.02491462482f
#define CC_ERF_B3 (-0.008132253906f)
#define CC_ERF_B4 0.002302502189f
#define CC_ERF_B5 (-0.0006611180314f)
#define CC_ERF_B6 0.0005433237744f
#define CC_ERF_B7 0.0002250647820f
#define CC_ERF_B8 0.0001068435796f

/* ================================================================ AVX-512 */
#define CC_AVX512_FN static inline __attribute__((target(CC_TARGET_AVX512), always_inline))

CC_AVX512_FN __m512 cc_exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(CC_EXP_CLAMP_HI), x);
    x = _mm512_max_ps(_mm512_set1_ps(CC_EXP_CLAMP_LO), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(CC_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CC_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CC_LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(CC_EXP_E6), r, _mm512_set1_ps(CC_EXP_E5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CC_EXP_E4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CC_EXP_E3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CC_EXP_E2));
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, n);
}

CC_AVX512_FN __m512 cc_abs_avx512(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

/* |value| with the sign bit of `sign` */
CC_AVX512_FN __m512 cc_copysign_avx512(__m512 value, __m512 sign) {
    __m512i s = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(value), s));
}

CC_AVX512_FN __m512 cc_tanh_avx512(__m512 x) {
    __m512 ax = cc_abs_avx512(x);
    /* small: a + a·u·P(u) */
    __m512 u = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(CC_TANH_T5), u, _mm512_set1_ps(CC_TANH_T4));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_TANH_T3));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_TANH_T2));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_TANH_T1));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(ax, u), p, ax);
    /* large: 1 − 2/(e^{2|x|} + 1) */
    __m512 a = _mm512_min_ps(_mm512_set1_ps(CC_TANH_CLAMP), ax);
    __m512 e = cc_exp_avx512(_mm512_add_ps(a, a));
    __m512 large = _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(CC_TANH_SMALL), _CMP_LT_OQ);
    return cc_copysign_avx512(_mm512_mask_blend_ps(is_small, large, small), x);
}

CC_AVX512_FN __m512 cc_erf_avx512(__m512 x) {
    __m512 ax = cc_abs_avx512(x);
    __m512 u = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(CC_ERF_A6), u, _mm512_set1_ps(CC_ERF_A5));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_ERF_A4));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_ERF_A3));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_ERF_A2));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_ERF_A1));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(CC_ERF_A0M1));
    __m512 small = _mm512_fmadd_ps(ax, p, ax);
    __m512 a = _mm512_min_ps(_mm512_set1_ps(CC_ERF_CLAMP), ax);
    __m512 s = _mm512_sub_ps(a, _mm512_set1_ps(CC_ERF_CENTER));
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(CC_ERF_B8), s, _mm512_set1_ps(CC_ERF_B7));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B6));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B5));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B4));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B3));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B2));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B1));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(CC_ERF_B0));
    __m512 e = cc_exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
    __m512 large = _mm512_fnmadd_ps(e, q, _mm512_set1_ps(1.0f));
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(CC_ERF_SMALL), _CMP_LT_OQ);
    return cc_copysign_avx512(_mm512_mask_blend_ps(is_small, large, small), x);
}

/* ================================================================ AVX2 + FMA */
#define CC_AVX2_FN static inline __attribute__((target(CC_TARGET_AVX2), always_inline))

/* 2^n for integral float n in [-126, 127] */
CC_AVX2_FN __m256 cc_pow2i_avx2(__m256 n) {
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(bits);
}

CC_AVX2_FN __m256 cc_exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(CC_EXP_CLAMP_HI), x);
    x = _mm256_max_ps(_mm256_set1_ps(CC_EXP_CLAMP_LO), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(CC_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CC_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CC_LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(CC_EXP_E6), r, _mm256_set1_ps(CC_EXP_E5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CC_EXP_E4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CC_EXP_E3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CC_EXP_E2));
    __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r), _mm256_set1_ps(1.0f));
    /* n in [-159, 145]: 2ⁿ = 2^{n1}·2^{n2} with both halves normal; e·2^{n1} is exact, the second
     * multiply rounds once (to inf on overflow, into the subnormals for tiny results) */
    __m256 n1 = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
    __m256 n2 = _mm256_sub_ps(n, n1);
    return _mm256_mul_ps(_mm256_mul_ps(e, cc_pow2i_avx2(n1)), cc_pow2i_avx2(n2));
}

CC_AVX2_FN __m256 cc_abs_avx2(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

CC_AVX2_FN __m256 cc_copysign_avx2(__m256 value, __m256 sign) {
    return _mm256_or_ps(value, _mm256_and_ps(_mm256_set1_ps(-0.0f), sign));
}

CC_AVX2_FN __m256 cc_tanh_avx2(__m256 x) {
    __m256 ax = cc_abs_avx2(x);
    __m256 u = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(CC_TANH_T5), u, _mm256_set1_ps(CC_TANH_T4));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_TANH_T3));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_TANH_T2));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_TANH_T1));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, u), p, ax);
    __m256 a = _mm256_min_ps(_mm256_set1_ps(CC_TANH_CLAMP), ax);
    __m256 e = cc_exp_avx2(_mm256_add_ps(a, a));
    __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(CC_TANH_SMALL), _CMP_LT_OQ);
    return cc_copysign_avx2(_mm256_blendv_ps(large, small, is_small), x);
}

CC_AVX2_FN __m256 cc_erf_avx2(__m256 x) {
    __m256 ax = cc_abs_avx2(x);
    __m256 u = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(CC_ERF_A6), u, _mm256_set1_ps(CC_ERF_A5));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_ERF_A4));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_ERF_A3));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_ERF_A2));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_ERF_A1));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(CC_ERF_A0M1));
    __m256 small = _mm256_fmadd_ps(ax, p, ax);
    __m256 a = _mm256_min_ps(_mm256_set1_ps(CC_ERF_CLAMP), ax);
    __m256 s = _mm256_sub_ps(a, _mm256_set1_ps(CC_ERF_CENTER));
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(CC_ERF_B8), s, _mm256_set1_ps(CC_ERF_B7));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B6));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B5));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B4));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B3));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B2));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B1));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(CC_ERF_B0));
    __m256 e = cc_exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    __m256 large = _mm256_fnmadd_ps(e, q, _mm256_set1_ps(1.0f));
    __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(CC_ERF_SMALL), _CMP_LT_OQ);
    return cc_copysign_avx2(_mm256_blendv_ps(large, small, is_small), x);
}

#endif /* x86-64 */
#endif
