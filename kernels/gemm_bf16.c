/* gemm_bf16.c — the bf16 back end of the pre-packed GEMM (cc_gemm_pack_b_bf16): A and B rounded
 * to bfloat16, products summed in float by AVX512_BF16's vdpbf16ps, which multiplies two bf16
 * pairs per 32-bit lane and adds both products to a float accumulator — twice the multiplies
 * of a float FMA per instruction.
 *
 * Layout (gemm_internal.h has the struct): operands are stored as k pairs, one uint32 per pair
 * (low half = even k, high half = odd k, a zero high half past an odd K):
 *   packed A panel: ap[kp*MR + r] = (A[r, 2kp], A[r, 2kp+1]) for the panel's rows r < MR;
 *   packed B panel: bp[kp*NR + c] = (B[2kp, c], B[2kp+1, c]), zero-padded to NR columns.
 * The micro-kernel broadcasts one A pair and multiplies it with 16 B pairs per instruction: a
 * 14×32 tile, 28 zmm accumulators, as the float kernel (gemm_avx512.c).
 *
 * Rounding is to nearest even (vcvtne2ps2bf16 / vcvtneps2bf16; the same rule in C for the edge
 * panel of B).
 * Compiled with target attributes only; cc_gemm_has_bf16() tells whether the CPU runs it.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/gemm_internal.h"
#include "kernels/gemm_tiles.h"
#include "kernels/transpose16.h"

#define BF16_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma")))
#define BF16_INLINE static inline BF16_TARGET __attribute__((always_inline))

enum { MR = 14, NR = 32 };
/* k elements per block: a B panel of KC/2 pairs × 32 columns is 32 KiB (in L1), an A block of
 * MC rows 168 KiB (in L2). */
enum { KC = 512, MC = 168 };

int cc_gemm_cpu_has_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
}

/* float -> bf16, nearest even; NaN stays NaN (quiet). */
uint16_t cc_bf16_round(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* ---- packing ------------------------------------------------------------------------------ */

/* One panel of fewer than NR columns (zero-padded), in plain C. */
static void pack_b_edge(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                        uint32_t *dst) {
    int64_t pairs = (kc + 1) / 2;
    for (int64_t p = 0; p < n; p += NR, dst += NR * pairs) {
        for (int64_t kp = 0; kp < pairs; kp++) {
            for (int c = 0; c < NR; c++) {
                uint32_t pair = 0;
                if (p + c < n) {
                    int64_t j = j0 + p + c, k = k0 + 2 * kp;
                    float lo = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                    float hi = 2 * kp + 1 < kc ? (trans_b ? B[j * ldb + k + 1] : B[(k + 1) * ldb + j]) : 0.0f;
                    pair = (uint32_t)cc_bf16_round(lo) | (uint32_t)cc_bf16_round(hi) << 16;
                }
                dst[kp * NR + c] = pair;
            }
        }
    }
}

static inline __mmask16 lane_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* transpose16 on integer lanes: on return r[j] holds what was lane j of each row. */
BF16_INLINE void transpose16_epi32(__m512i r[16]) { transpose16((__m512 *)r); }

/* 32 floats of a row (the first `count`, zeros after) as 16 bf16 pairs. */
BF16_INLINE __m512i row_pairs(const float *src, int count) {
    __m512 lo = _mm512_maskz_loadu_ps(lane_mask(count), src);
    __m512 hi = _mm512_maskz_loadu_ps(lane_mask(count > 16 ? count - 16 : 0), src + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* 16 floats of row k and of row k+1 (zeros when k+1 is past the block) as 16 pairs. */
BF16_INLINE __m512i interleave_pairs(__m512 even, __m512 odd) {
    __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(even));
    __m512i hi = _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(odd)), 16);
    return _mm512_or_si512(lo, hi);
}

/* B: columns [j0, j0+n) × k [k0, k0+kc) of op(B) into ceil(n/NR) panels of ceil(kc/2) pair rows
 * (a weight once for inference; every product's B in training, so vectorised). */
static BF16_TARGET void pack_b_bf16(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                                    int64_t n, uint32_t *dst) {
    int64_t pairs = (kc + 1) / 2;
    for (int64_t p = 0; p < n; p += NR, dst += NR * pairs) {
        if (n - p < NR) { /* edge panel */
            pack_b_edge(trans_b, B, ldb, k0, kc, j0 + p, n - p, dst);
            continue;
        }
        if (!trans_b) { /* op(B)[k, j] = B[k*ldb + j]: rows k and k+1 give 16 column pairs per half */
            const float *src = B + k0 * ldb + j0 + p;
            for (int64_t kp = 0; kp < pairs; kp++)
                for (int half = 0; half < 2; half++) {
                    const float *even = src + 2 * kp * ldb + 16 * half;
                    __m512 odd = 2 * kp + 1 < kc ? _mm512_loadu_ps(even + ldb) : _mm512_setzero_ps();
                    _mm512_store_si512(dst + kp * NR + 16 * half, interleave_pairs(_mm512_loadu_ps(even), odd));
                }
        } else { /* op(B)[k, j] = B[j*ldb + k]: column j's pairs are contiguous; transpose 16 columns */
            for (int half = 0; half < 2; half++) {
                const float *src = B + (j0 + p + 16 * half) * ldb + k0;
                for (int64_t k = 0; k < kc; k += 32) {
                    int count = kc - k < 32 ? (int)(kc - k) : 32;
                    __m512i r[16];
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++) r[i] = row_pairs(src + i * ldb + k, count);
                    transpose16_epi32(r);
                    int n_pairs = (count + 1) / 2;
                    for (int j = 0; j < n_pairs; j++) _mm512_store_si512(dst + (k / 2 + j) * NR + 16 * half, r[j]);
                }
            }
        }
    }
}

/* A: rows [i0, i0+m) × k [k0, k0+kc) of op(A) into ceil(m/MR) panels (rows past m not written). */
static BF16_TARGET void pack_a_bf16(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                    int64_t kc, uint32_t *dst) {
    int64_t pairs = (kc + 1) / 2;
    for (int64_t p = 0; p < m; p += MR, dst += MR * pairs) {
        int rows = m - p < MR ? (int)(m - p) : MR;
        __mmask16 row_mask = lane_mask(rows);
        if (trans_a) { /* op(A)[i, k] = A[k*lda + i]: rows k and k+1 give `rows` pairs */
            const float *src = A + k0 * lda + i0 + p;
            for (int64_t kp = 0; kp < pairs; kp++) {
                __m512 even = _mm512_maskz_loadu_ps(row_mask, src + 2 * kp * lda);
                __m512 odd = 2 * kp + 1 < kc ? _mm512_maskz_loadu_ps(row_mask, src + (2 * kp + 1) * lda) : _mm512_setzero_ps();
                _mm512_mask_storeu_epi32(dst + kp * MR, row_mask, interleave_pairs(even, odd));
            }
        } else { /* rows contiguous along k: 32 floats -> 16 pairs per row, then transpose 16 rows */
            const float *src = A + (i0 + p) * lda + k0;
            for (int64_t k = 0; k < kc; k += 32) {
                int count = kc - k < 32 ? (int)(kc - k) : 32;
                __m512i r[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++) r[i] = i < rows ? row_pairs(src + i * lda + k, count) : _mm512_setzero_si512();
                transpose16_epi32(r);
                int n_pairs = (count + 1) / 2;
                for (int j = 0; j < n_pairs; j++) _mm512_mask_storeu_epi32(dst + (k / 2 + j) * MR, row_mask, r[j]);
            }
        }
    }
}

/* ---- micro-kernel ------------------------------------------------------------------------- */

BF16_INLINE void tile(const int rows, const int nv, const int full, int n, int64_t pairs, const uint32_t *ap,
                      const uint32_t *bp, float *c, int64_t ldc, float alpha, float beta) {
    const __mmask16 mask0 = full ? (__mmask16)0xFFFF : lane_mask(n);
    const __mmask16 mask1 = full ? (__mmask16)0xFFFF : lane_mask(n - 16 > 0 ? n - 16 : 0);
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) {
        acc[r][0] = _mm512_setzero_ps();
        if (nv == 2) acc[r][1] = _mm512_setzero_ps();
    }
#pragma GCC unroll 2
    for (int64_t kp = 0; kp < pairs; kp++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp + kp * NR);
        __m512bh b1 = nv == 2 ? (__m512bh)_mm512_load_si512(bp + kp * NR + 16) : b0;
        const uint32_t *acol = ap + kp * MR;
#pragma GCC unroll 14
        for (int r = 0; r < rows; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)acol[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            if (nv == 2) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) cc_gemm_tile_store(acc[r], nv, full, mask0, mask1, c + r * ldc, alpha, beta);
}

CC_GEMM_TILES(BF16_TARGET,
              (int n, int64_t pairs, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, float alpha, float beta),
              (n, pairs, ap, bp, c, ldc, alpha, beta))

static void micro_bf16(int m, int n, int64_t pairs, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc,
                       float alpha, float beta) {
    CC_GEMM_TILE(m, n)(n, pairs, ap, bp, c, ldc, alpha, beta);
}

const cc_gemm_bf16_backend cc_gemm_bf16_avx512 = {
    .mr = MR, .nr = NR, .kc = KC, .mc = MC, .pack_a = pack_a_bf16, .pack_b = pack_b_bf16, .micro = micro_bf16,
};
