/* gemm_avx512.c — AVX-512 back end of clipc's SGEMM: a 14×32 register-tile micro-kernel (28 zmm
 * accumulators, B rows loaded as two zmm, A broadcast per row) and the packing routines.
 *
 * Compiled with target attributes only, so the rest of the binary runs on CPUs without AVX-512;
 * gemm.c picks this back end after __builtin_cpu_supports("avx512f"). Edge tiles use masked B
 * loads and masked C stores for columns, and a kernel specialised per row count for rows, so no
 * work is spent on padding rows.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/gemm_internal.h"
#include "kernels/gemm_tiles.h"
#include "kernels/transpose16.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define AVX512_INLINE static inline AVX512_TARGET __attribute__((always_inline))

enum { MR = 14, NR = 32 };

/* Blocking for a Zen 5 core (48 KiB L1d, 1 MiB L2, 32 MiB L3 shared); see gemm.c for the
 * measurements behind these. */
enum { KC = 384, MC = 168, NC = 3072 };
#ifndef PACK_PREFETCH
#define PACK_PREFETCH 64
#endif

/* ---- micro-kernel ------------------------------------------------------------------------- */

static inline __mmask16 column_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* The tile for `rows` rows and `nv` (1 or 2) column vectors; `full` = all NR columns present,
 * so loads and stores need no mask. Everything is a compile-time constant after inlining. */
AVX512_INLINE void tile(const int rows, const int nv, const int full, int n, int64_t kc, const float *ap,
                        const float *bp, int64_t ldb, float *c, int64_t ldc, float alpha, float beta) {
    const __mmask16 mask0 = full ? (__mmask16)0xFFFF : column_mask(n);
    const __mmask16 mask1 = full ? (__mmask16)0xFFFF : column_mask(n - 16 > 0 ? n - 16 : 0);
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) {
        acc[r][0] = _mm512_setzero_ps();
        if (nv == 2) acc[r][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        if (nv == 2) _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const float *brow = bp + k * ldb;
        __m512 b0 = full ? _mm512_loadu_ps(brow) : _mm512_maskz_loadu_ps(mask0, brow);
        __m512 b1 = _mm512_setzero_ps();
        if (nv == 2) b1 = full ? _mm512_loadu_ps(brow + 16) : _mm512_maskz_loadu_ps(mask1, brow + 16);
        const float *acol = ap + k * MR;
#pragma GCC unroll 14
        for (int r = 0; r < rows; r++) {
            __m512 a = _mm512_set1_ps(acol[r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            if (nv == 2) acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) cc_gemm_tile_store(acc[r], nv, full, mask0, mask1, c + r * ldc, alpha, beta);
}

CC_GEMM_TILES(AVX512_TARGET,
              (int n, int64_t kc, const float *ap, const float *bp, int64_t ldb, float *c, int64_t ldc, float alpha, float beta),
              (n, kc, ap, bp, ldb, c, ldc, alpha, beta))

static void micro_avx512(int m, int n, int64_t kc, const float *ap, const float *bp, int64_t ldb, float *c,
                         int64_t ldc, float alpha, float beta) {
    CC_GEMM_TILE(m, n)(n, kc, ap, bp, ldb, c, ldc, alpha, beta);
}

/* ---- packing ------------------------------------------------------------------------------ */

/* Reads `rows` (<= 16) rows of `cols` (<= 16) floats, `ld` apart, transposes, and stores
 * column j (now `rows` values) at dst + j*dst_stride for j < cols, `store_width` floats each
 * (values past `rows` are zero). */
AVX512_INLINE void transpose_block(const float *src, int64_t ld, int rows, int cols, float *dst, int64_t dst_stride,
                                   __mmask16 store_mask) {
    __m512 r[16];
    __mmask16 load_mask = column_mask(cols);
    #pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(load_mask, src + i * ld) : _mm512_setzero_ps();
    transpose16(r);
    for (int j = 0; j < cols; j++) _mm512_mask_storeu_ps(dst + j * dst_stride, store_mask, r[j]);
}

static AVX512_TARGET void pack_a_avx512(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                        int64_t kc, float *dst) {
    for (int64_t p = 0; p < m; p += MR, dst += MR * kc) {
        int rows = m - p < MR ? (int)(m - p) : MR;
        __mmask16 row_mask = column_mask(rows);
        if (trans_a) { /* op(A)[i, k] = A[k*lda + i]: each k gives `rows` contiguous floats */
            const float *src = A + k0 * lda + i0 + p;
            for (int64_t k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(dst + k * MR, row_mask, _mm512_maskz_loadu_ps(row_mask, src + k * lda));
        } else { /* rows of A are contiguous along k: transpose 16-wide blocks */
            const float *src = A + (i0 + p) * lda + k0;
            int64_t k = 0;
            if (rows == MR) /* full panel: plain loads, two zero rows */
                for (; k + 16 <= kc; k += 16) {
                    __m512 r[16];
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++) r[i] = i < MR ? _mm512_loadu_ps(src + i * lda + k) : _mm512_setzero_ps();
                    transpose16(r);
#pragma GCC unroll 16
                    for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(dst + (k + j) * MR, row_mask, r[j]);
                }
            for (; k < kc; k += 16) {
                int cols = kc - k < 16 ? (int)(kc - k) : 16;
                transpose_block(src + k, lda, rows, cols, dst + k * MR, MR, row_mask);
            }
        }
    }
}

static AVX512_TARGET void pack_b_avx512(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                                        int64_t n, float *dst) {
    for (int64_t p = 0; p < n; p += NR, dst += NR * kc) {
        int cols = n - p < NR ? (int)(n - p) : NR;
        if (!trans_b) { /* op(B)[k, j] = B[k*ldb + j]: contiguous along j */
            __mmask16 mask0 = column_mask(cols), mask1 = column_mask(cols > 16 ? cols - 16 : 0);
            const float *src = B + k0 * ldb + j0 + p;
            for (int64_t k = 0; k < kc; k++) {
                _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(mask0, src + k * ldb));
                _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(mask1, src + k * ldb + 16));
            }
        } else if (cols == NR) { /* op(B)[k, j] = B[j*ldb + k]: transpose 16×16 blocks, two per panel row */
            const float *src = B + (j0 + p) * ldb + k0;
            int64_t k = 0;
            for (; k + 16 <= kc; k += 16) {
                for (int half = 0; half < 2; half++) {
                    __m512 r[16];
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (i + 16 * half) * ldb + k);
                    transpose16(r);
#pragma GCC unroll 16
                    for (int j = 0; j < 16; j++) _mm512_store_ps(dst + (k + j) * NR + 16 * half, r[j]);
                }
            }
            if (k < kc) {
                int kk = (int)(kc - k);
                transpose_block(src + k, ldb, 16, kk, dst + k * NR, NR, 0xFFFF);
                transpose_block(src + 16 * ldb + k, ldb, 16, kk, dst + k * NR + 16, NR, 0xFFFF);
            }
        } else { /* edge panel: fewer than NR columns, zero-padded */
            for (int half = 0; half < 2; half++) {
                int rows = cols - 16 * half;
                if (rows > 16) rows = 16;
                const float *src = B + (j0 + p + 16 * half) * ldb + k0;
                for (int64_t k = 0; k < kc; k += 16) {
                    int kk = kc - k < 16 ? (int)(kc - k) : 16;
                    if (rows <= 0) {
                        for (int j = 0; j < kk; j++) _mm512_store_ps(dst + (k + j) * NR + 16 * half, _mm512_setzero_ps());
                    } else {
                        transpose_block(src + k, ldb, rows, kk, dst + k * NR + 16 * half, NR, 0xFFFF);
                    }
                }
            }
        }
    }
}

/* bf16 -> f32: the bf16 bits are the upper half of the float. */
AVX512_INLINE __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
AVX512_INLINE __m512 load_bf16(__mmask16 mask, const uint16_t *src) { return widen_bf16(_mm256_maskz_loadu_epi16(mask, src)); }

static AVX512_TARGET void pack_b_bf16_avx512(int trans_b, const uint16_t *B, int64_t ldb, int64_t k0, int64_t kc,
                                             int64_t j0, int64_t n, float *dst) {
    for (int64_t p = 0; p < n; p += NR, dst += NR * kc) {
        int cols = n - p < NR ? (int)(n - p) : NR;
        if (!trans_b) {
            __mmask16 mask0 = column_mask(cols), mask1 = column_mask(cols > 16 ? cols - 16 : 0);
            const uint16_t *src = B + k0 * ldb + j0 + p;
            for (int64_t k = 0; k < kc; k++) {
                _mm512_store_ps(dst + k * NR, load_bf16(mask0, src + k * ldb));
                _mm512_store_ps(dst + k * NR + 16, load_bf16(mask1, src + k * ldb + 16));
            }
        } else {
            for (int half = 0; half < 2; half++) {
                int rows = cols - 16 * half;
                if (rows > 16) rows = 16;
                const uint16_t *src = B + (j0 + p + 16 * half) * ldb + k0;
                for (int64_t k = 0; k < kc; k += 16) {
                    int kk = kc - k < 16 ? (int)(kc - k) : 16;
                    __m512 r[16];
                    if (rows == 16 && kk == 16) { /* full block: plain loads and stores */
#pragma GCC unroll 16
                        for (int i = 0; i < 16; i++) r[i] = widen_bf16(_mm256_loadu_si256((const __m256i *)(src + i * ldb + k)));
                        transpose16(r);
#pragma GCC unroll 16
                        for (int j = 0; j < 16; j++) _mm512_store_ps(dst + (k + j) * NR + 16 * half, r[j]);
                        continue;
                    }
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++)
                        r[i] = i < rows ? load_bf16(column_mask(kk), src + i * ldb + k) : _mm512_setzero_ps();
                    transpose16(r);
                    for (int j = 0; j < kk; j++) _mm512_store_ps(dst + (k + j) * NR + 16 * half, r[j]);
                }
            }
        }
    }
}

const cc_gemm_backend cc_gemm_backend_avx512 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .mc = MC,
    .nc = NC,
    .micro = micro_avx512,
    .pack_a = pack_a_avx512,
    .pack_b = pack_b_avx512,
    .pack_b_bf16 = pack_b_bf16_avx512,
};
