/* gemm_int8.c — the int8 back end of the pre-packed GEMM (cc_gemm_pack_b_int8), on AVX512_VNNI's
 * vpdpbusd: four u8 × s8 products summed into each 32-bit lane, four times the multiplies of a
 * float FMA per instruction.
 *
 * Quantization (symmetric): B per output column n, q_b = round(B[:, n] / s_b[n]), s_b[n] =
 * max|B[:, n]| / 127, done once when the weight is packed; A per row m at every product,
 * q_a = round(A[m, :] / s_a[m]), s_a[m] = max|A[m, :]| / 127, stored offset by 128 as u8 (vpdpbusd
 * multiplies unsigned by signed). Then
 *     C[m, n] = s_a[m] s_b[n] (Σ_k (q_a + 128) q_b  -  128 Σ_k q_b),
 * the second sum kept per column and k block with the packed B.
 *
 * Layout: operands as k quads, one uint32 per quad (byte i = k 4kq+i; zeros past K in B, so a
 * padded A byte adds nothing):
 *   packed A panel: ap[kq*MR + r];  packed B panel: bp[kq*NR + c], zero-padded to NR columns.
 * A 14×32 tile of 28 zmm i32 accumulators per k block, converted to float and scaled at the end
 * of the block. Compiled with target attributes only; cc_gemm_has_int8() tells whether it runs.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/gemm_internal.h"
#include "kernels/gemm_tiles.h"
#include "kernels/transpose16.h"

#define INT8_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,fma")))
#define INT8_INLINE static inline INT8_TARGET __attribute__((always_inline))

enum { MR = 14, NR = 32 };
/* k per block: a B panel of KC/4 quads × 32 columns is 32 KiB (L1); |Σ| <= KC·255·127 < 2^31. */
enum { KC = 1024, MC = 168 };

int cc_gemm_cpu_has_int8(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
}

static int8_t quantize(float x, float inv_scale) {
    float q = nearbyintf(x * inv_scale);
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

/* ---- packing ------------------------------------------------------------------------------ */

/* B: columns [j0, j0+n) × k [k0, k0+kc) of op(B) into ceil(n/NR) panels of ceil(kc/4) quad rows,
 * with the column sums of the block's codes (colsum[c], NR per panel, zero past n). inv_scale[j]
 * is 1 / s_b of column j0+j. Done once per weight: plain C. */
static void pack_b_int8(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                        const float *inv_scale, uint32_t *dst, int32_t *colsum) {
    int64_t quads = (kc + 3) / 4;
    for (int64_t p = 0; p < n; p += NR, dst += NR * quads, colsum += NR) {
        for (int c = 0; c < NR; c++) {
            int32_t sum = 0;
            for (int64_t kq = 0; kq < quads; kq++) {
                uint32_t quad = 0;
                for (int i = 0; i < 4 && p + c < n; i++) {
                    int64_t j = j0 + p + c, k = k0 + 4 * kq + i;
                    if (4 * kq + i >= kc) break;
                    int8_t q = quantize(trans_b ? B[j * ldb + k] : B[k * ldb + j], inv_scale[p + c]);
                    sum += q;
                    quad |= (uint32_t)(uint8_t)q << (8 * i);
                }
                dst[kq * NR + c] = quad;
            }
            colsum[c] = sum;
        }
    }
}

static inline __mmask16 lane_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* 16 floats × inv_scale rounded to nearest even (the default rounding mode), as 16 signed bytes.
 * |x · inv_scale| <= 127 · (1 + 2^-23) never rounds past 127, so no clamp is needed. */
INT8_INLINE __m128i to_codes(__m512 x, __m512 inv_scale) {
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x, inv_scale)));
}

/* max |x[i]| over n contiguous floats; NaN when any is NaN (the row's scale must carry it). */
static INT8_TARGET float absmax_int8(const float *x, int64_t n) {
    __m512 largest = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (int64_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_abs_ps(_mm512_maskz_loadu_ps(lane_mask(n - i < 16 ? (int)(n - i) : 16), x + i));
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        largest = _mm512_max_ps(largest, v);
    }
    return nan ? NAN : _mm512_reduce_max_ps(largest);
}

/* A: rows [i0, i0+m) × k [k0, k0+kc) of op(A) into ceil(m/MR) panels of u8 quads (rows past m
 * not written); inv_scale[i] = 1 / s_a of row i0+i (0 for an all-zero row). */
static INT8_TARGET void pack_a_int8(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                    int64_t kc, const float *inv_scale, uint32_t *dst) {
    int64_t quads = (kc + 3) / 4;
    for (int64_t p = 0; p < m; p += MR, dst += MR * quads) {
        int rows = m - p < MR ? (int)(m - p) : MR;
        if (trans_a) { /* op(A)[i, k] = A[k*lda + i]: scalar, rare (no inference product uses it) */
            for (int r = 0; r < rows; r++)
                for (int64_t kq = 0; kq < quads; kq++) {
                    uint32_t quad = 0;
                    for (int i = 0; i < 4 && 4 * kq + i < kc; i++) {
                        float x = A[(k0 + 4 * kq + i) * lda + i0 + p + r];
                        quad |= (uint32_t)(uint8_t)(quantize(x, inv_scale[p + r]) + 128) << (8 * i);
                    }
                    dst[kq * MR + r] = quad;
                }
            continue;
        }
        /* rows contiguous along k: 64 floats -> 16 quads per row, then transpose 16 rows */
        const float *src = A + (i0 + p) * lda + k0;
        __mmask16 row_mask = lane_mask(rows);
        for (int64_t k = 0; k < kc; k += 64) {
            int count = kc - k < 64 ? (int)(kc - k) : 64;
            __m512i r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                r[i] = _mm512_setzero_si512();
                if (i >= rows) continue;
                __m512 inv = _mm512_set1_ps(inv_scale[p + i]);
                __m128i bytes[4];
                for (int v = 0; v < 4; v++) {
                    int left = count - 16 * v;
                    bytes[v] = to_codes(_mm512_maskz_loadu_ps(lane_mask(left > 0 ? left : 0), src + i * lda + k + 16 * v), inv);
                }
                __m512i codes = _mm512_inserti32x4(
                    _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(bytes[0]), bytes[1], 1), bytes[2], 2),
                    bytes[3], 3);
                r[i] = _mm512_xor_si512(codes, _mm512_set1_epi8((char)0x80)); /* + 128 as u8: flip the sign bit */
            }
            transpose16((__m512 *)r);
            int n_quads = (count + 3) / 4;
            for (int q = 0; q < n_quads; q++) _mm512_mask_storeu_epi32(dst + (k / 4 + q) * MR, row_mask, r[q]);
        }
    }
}

/* ---- micro-kernel ------------------------------------------------------------------------- */

INT8_INLINE void tile(const int rows, const int nv, const int full, int n, int64_t quads, const uint32_t *ap,
                      const uint32_t *bp, const int32_t *colsum, const float *b_scale, const float *a_scale, float *c,
                      int64_t ldc, float alpha, float beta) {
    const __mmask16 mask0 = full ? (__mmask16)0xFFFF : lane_mask(n);
    const __mmask16 mask1 = full ? (__mmask16)0xFFFF : lane_mask(n - 16 > 0 ? n - 16 : 0);
    /* accumulators start at -128 Σ q_b (the u8 offset of A's codes); kept as int32 vectors (__v16si,
     * vpdpbusd's own type: as __m512i, whose lanes are 64-bit, gcc kept a stack copy of each one in
     * the loop, measured 365 of the 976 GOP/s peak) */
    __v16si start0 = (__v16si)_mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_load_si512(colsum), 7));
    __v16si start1 = nv == 2 ? (__v16si)_mm512_sub_epi32(_mm512_setzero_si512(),
                                                         _mm512_slli_epi32(_mm512_load_si512(colsum + 16), 7))
                             : start0;
    __v16si acc[MR][2];
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) {
        acc[r][0] = start0;
        if (nv == 2) acc[r][1] = start1;
    }
#pragma GCC unroll 2
    for (int64_t kq = 0; kq < quads; kq++) {
        __v16si b0 = (__v16si)_mm512_load_si512(bp + kq * NR);
        __v16si b1 = nv == 2 ? (__v16si)_mm512_load_si512(bp + kq * NR + 16) : b0;
        const uint32_t *acol = ap + kq * MR;
#pragma GCC unroll 14
        for (int r = 0; r < rows; r++) {
            __v16si a = (__v16si)_mm512_set1_epi32((int)acol[r]);
            acc[r][0] = (__v16si)_mm512_dpbusd_epi32((__m512i)acc[r][0], (__m512i)a, (__m512i)b0);
            if (nv == 2) acc[r][1] = (__v16si)_mm512_dpbusd_epi32((__m512i)acc[r][1], (__m512i)a, (__m512i)b1);
        }
    }
    const __m512 scale0 = _mm512_loadu_ps(b_scale), scale1 = _mm512_loadu_ps(b_scale + 16);
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) {
        __m512 row_scale = _mm512_set1_ps(a_scale[r]), out[2];
        out[0] = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps((__m512i)acc[r][0]), scale0), row_scale);
        if (nv == 2) out[1] = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps((__m512i)acc[r][1]), scale1), row_scale);
        cc_gemm_tile_store(out, nv, full, mask0, mask1, c + r * ldc, alpha, beta);
    }
}

CC_GEMM_TILES(INT8_TARGET,
              (int n, int64_t quads, const uint32_t *ap, const uint32_t *bp, const int32_t *colsum, const float *b_scale,
               const float *a_scale, float *c, int64_t ldc, float alpha, float beta),
              (n, quads, ap, bp, colsum, b_scale, a_scale, c, ldc, alpha, beta))

static void micro_int8(int m, int n, int64_t quads, const uint32_t *ap, const uint32_t *bp, const int32_t *colsum,
                       const float *b_scale, const float *a_scale, float *c, int64_t ldc, float alpha, float beta) {
    CC_GEMM_TILE(m, n)(n, quads, ap, bp, colsum, b_scale, a_scale, c, ldc, alpha, beta);
}

const cc_gemm_int8_backend cc_gemm_int8_avx512 = {
    .mr = MR, .nr = NR, .kc = KC, .mc = MC, .absmax = absmax_int8, .pack_a = pack_a_int8, .pack_b = pack_b_int8,
    .micro = micro_int8,
};
